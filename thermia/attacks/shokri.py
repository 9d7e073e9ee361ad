"""The shadow-model attack of Shokri et al.

Shokri, Stronati, Song and Shmatikov, "Membership Inference Attacks Against Machine
Learning Models" (IEEE S&P 2017), https://arxiv.org/abs/1610.05820. One attack
classifier per class learns, from the shadows' outputs on units whose membership is
known, to tell a member's probability vector from a non-member's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from thermia.attacks.core import MembershipView, Turn, check_params, pool_frames

logger = logging.getLogger(__name__)


def make_estimator(
    name: str, seed: int, overrides: Mapping[str, Any] | None = None
) -> ClassifierMixin:
    """Build one attack classifier.

    Parameters
    ----------
    name : {"gradient_boosting", "logistic", "random_forest", "mlp"}
        ``"gradient_boosting"`` is a small HistGradientBoostingClassifier (100
        iterations of trees with at most 8 leaves over 63 bins), as the features are
        few. All but ``"mlp"`` weight the two classes equally
        (``class_weight="balanced"``); the MLP is balanced by subsampling instead.
    seed : int
        ``random_state`` of the estimator.
    overrides : mapping, optional
        Passed to ``set_params``.
    """
    if name == "gradient_boosting":
        estimator = HistGradientBoostingClassifier(
            max_iter=100,
            max_leaf_nodes=8,
            max_bins=63,
            early_stopping=False,
            class_weight="balanced",
            random_state=seed,
        )
    elif name == "logistic":
        estimator = LogisticRegression(
            max_iter=1000, class_weight="balanced", random_state=seed
        )
    elif name == "random_forest":
        estimator = RandomForestClassifier(
            n_estimators=100,
            min_samples_leaf=5,
            class_weight="balanced",
            random_state=seed,
        )
    elif name == "mlp":
        estimator = MLPClassifier(
            hidden_layer_sizes=(64,), max_iter=300, random_state=seed
        )
    else:
        raise ValueError(
            f"unknown attack estimator {name!r}; choose gradient_boosting, logistic, "
            "random_forest or mlp"
        )
    return estimator.set_params(**dict(overrides or {}))


def shokri_attack(
    view: MembershipView,
    signals: Mapping[str, np.ndarray],
    turn: Turn,
    params: Mapping[str, Any],
    rng: np.random.Generator,
) -> np.ndarray:
    """Score the target's pool frames with per-class attack classifiers.

    The training rows come from the shadows only: each shadow's probability vector
    on every frame of a unit in its own pool, labelled ``keep[shadow, unit]``. The
    classifier of a frame's true class scores the target's vector on that frame.

    Parameters
    ----------
    view : MembershipView
    signals : mapping
        Output of :func:`thermia.attacks.signals.compute_signals`.
    turn : Turn
        Target and its shadows (at least one).
    params : mapping
        ``estimator`` (default ``"gradient_boosting"``; see :func:`make_estimator`),
        ``estimator_params`` (mapping passed to ``set_params``), ``features``
        (``"sorted"``, the descending probability vector, default; or ``"full"``).
    rng : numpy.random.Generator
        Seeds the estimators and the MLP's balancing subsample.

    Returns
    -------
    ndarray of shape (n_pool_frames,)
        Member probability from the attack classifier, for
        ``pool_frames(view, turn.target)``; higher means more likely a member
        (label 1 = member).

    Raises
    ------
    ValueError
        If a class of the target's frames has no member or no non-member shadow
        example.
    """
    check_params("shokri", params, ("estimator", "estimator_params", "features"))
    estimator_name = params.get("estimator", "gradient_boosting")
    features = params.get("features", "sorted")
    if features not in ("sorted", "full"):
        raise ValueError(
            f"shokri: features must be 'sorted' or 'full', got {features!r}"
        )
    if not turn.shadows:
        raise ValueError(
            f"Shokri's attack needs shadow models; target {turn.target} has none"
        )
    vectors = signals["probs_sorted" if features == "sorted" else "probs"]

    shadow_frames = [(s, pool_frames(view, s)) for s in turn.shadows]
    x_train = np.concatenate([vectors[s, f] for s, f in shadow_frames])
    y_train = np.concatenate([view.keep[s, view.units[f]] for s, f in shadow_frames])
    class_train = np.concatenate([view.labels[f] for _, f in shadow_frames])

    target_frames = pool_frames(view, turn.target)
    x_target = vectors[turn.target, target_frames]
    class_target = view.labels[target_frames]
    scores = np.zeros(target_frames.size)
    for label in np.unique(class_target):
        rows = np.flatnonzero(class_train == label)
        n_member = int(y_train[rows].sum())
        n_non_member = rows.size - n_member
        if n_member == 0 or n_non_member == 0:
            raise ValueError(
                f"Shokri's attack: class {label} has {n_member} member and "
                f"{n_non_member} non-member shadow examples; it needs both "
                "(use more shadows or units)"
            )
        seed = int(rng.integers(2**31 - 1))
        if estimator_name == "mlp":
            rows = _balanced_subsample(rows, y_train[rows], rng)
        estimator = make_estimator(estimator_name, seed, params.get("estimator_params"))
        here = class_target == label
        # The fits are small: with several OpenMP threads, thread start-up and
        # spinning cost more than the work, and contend with parallel jobs.
        with threadpool_limits(limits=1, user_api="openmp"):
            estimator.fit(x_train[rows], y_train[rows].astype(np.int64))
            member = estimator.predict_proba(x_target[here])
        scores[here] = member[:, list(estimator.classes_).index(1)]
    return scores


def _balanced_subsample(
    rows: np.ndarray, member: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Keep all rows of the rarer label and as many random rows of the other."""
    in_rows, out_rows = rows[member], rows[~member]
    n = min(in_rows.size, out_rows.size)
    chosen = np.concatenate(
        [rng.choice(in_rows, n, replace=False), rng.choice(out_rows, n, replace=False)]
    )
    return np.sort(chosen)
