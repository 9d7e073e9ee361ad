"""RMIA, the relative membership inference attack.

Zarifzadeh et al., "Low-Cost High-Power Membership Inference Attacks" (ICML 2024),
https://arxiv.org/abs/2312.03262. A frame's likelihood ratio
``LR(x) = Pr(x | target) / Pr(x)`` compares the target's true-class probability
with its average over reference (shadow) models; the score is the fraction of a
population of other frames ``z`` that ``x`` dominates, ``LR(x) / LR(z) > gamma``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from thermia.attacks.core import MembershipView, Turn, check_params, pool_frames

logger = logging.getLogger(__name__)


def rmia_attack(
    view: MembershipView,
    signals: Mapping[str, np.ndarray],
    turn: Turn,
    params: Mapping[str, Any],
    rng: np.random.Generator,
) -> np.ndarray:
    """Score the target's pool frames with RMIA.

    ``Pr(x | target)`` is the target's ``p_true``. ``Pr(x)`` is, online, the mean
    ``p_true`` over all shadows; offline (the default), where only shadows that did
    not train on ``x``'s unit (OUT) are trusted, it is
    ``((1 + a) * mean_OUT + (1 - a)) / 2``, ``a`` standing for how much training on
    ``x`` would raise its probability. A frame without any OUT shadow falls back to
    the mean over all shadows (logged).

    The population is a seeded random sample of ``n_population`` frames of the whole
    view (all frames if fewer). For each candidate ``x`` only population frames of
    other units count, since frames of the same unit are near-duplicates and would
    cancel the signal.

    Parameters
    ----------
    view : MembershipView
    signals : mapping
        Output of :func:`thermia.attacks.signals.compute_signals` (``p_true``).
    turn : Turn
        Target and its shadows (at least one).
    params : mapping
        ``a`` (float in [0, 1], default 0.3; offline only), ``gamma`` (float > 0,
        default 1), ``n_population`` (int, default 1000), ``online`` (bool,
        default False).
    rng : numpy.random.Generator
        Draws the population.

    Returns
    -------
    ndarray of shape (n_pool_frames,)
        Fractions in [0, 1] for ``pool_frames(view, turn.target)``; higher means
        more likely a member (label 1 = member).
    """
    check_params("rmia", params, ("a", "gamma", "n_population", "online"))
    a = float(params.get("a", 0.3))
    gamma = float(params.get("gamma", 1.0))
    n_population = int(params.get("n_population", 1000))
    online = bool(params.get("online", False))
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"rmia: a must lie in [0, 1], got {a}")
    if gamma <= 0 or n_population < 1:
        raise ValueError("rmia: gamma must be positive and n_population at least 1")
    if not turn.shadows:
        raise ValueError(
            f"RMIA needs at least one shadow model; target {turn.target} has none"
        )

    candidates = pool_frames(view, turn.target)
    population = np.sort(
        rng.choice(view.n_frames, size=min(n_population, view.n_frames), replace=False)
    )
    ratio_x = _likelihood_ratio(view, signals["p_true"], turn, candidates, a, online)
    ratio_z = _likelihood_ratio(view, signals["p_true"], turn, population, a, online)
    return _dominated_fraction(
        ratio_x / gamma, view.units[candidates], ratio_z, view.units[population]
    )


def _likelihood_ratio(
    view: MembershipView,
    p_true: np.ndarray,
    turn: Turn,
    frames: np.ndarray,
    a: float,
    online: bool,
) -> np.ndarray:
    """``Pr(x | target) / Pr(x)`` for ``frames``, shape (n_frames_given,)."""
    shadows = np.asarray(turn.shadows, dtype=np.int64)
    reference = p_true[shadows][:, frames]
    mean_all = reference.mean(axis=0)
    if online:
        prior = mean_all
    else:
        out = ~view.keep[shadows][:, view.units[frames]]
        count = out.sum(axis=0)
        mean_out = np.where(
            count > 0,
            np.where(out, reference, 0.0).sum(axis=0) / np.maximum(count, 1),
            mean_all,
        )
        if (count == 0).any():
            logger.info(
                "RMIA, target %d: %d of %d frames have no OUT shadow; used the mean "
                "over all shadows",
                turn.target,
                int((count == 0).sum()),
                count.size,
            )
        prior = 0.5 * ((1.0 + a) * mean_out + (1.0 - a))
    return p_true[turn.target, frames] / np.maximum(prior, np.finfo(np.float64).tiny)


def _dominated_fraction(
    bound_x: np.ndarray, unit_x: np.ndarray, ratio_z: np.ndarray, unit_z: np.ndarray
) -> np.ndarray:
    """Fraction of population frames of other units with ``ratio_z < bound_x``.

    Parameters
    ----------
    bound_x, unit_x : ndarray of shape (n_candidates,)
        ``LR(x) / gamma`` and unit of each candidate.
    ratio_z, unit_z : ndarray of shape (n_population,)
        ``LR(z)`` and unit of each population frame.

    Returns
    -------
    ndarray of shape (n_candidates,)
        In [0, 1]; 0.5 where no population frame belongs to another unit.
    """
    # Shared integer ranks make "ratio_z < bound_x" an exact integer comparison, so
    # (unit, rank) pairs can be packed into one sortable key.
    _, rank = np.unique(np.concatenate([ratio_z, bound_x]), return_inverse=True)
    rank_z, rank_x = rank[: ratio_z.size], rank[ratio_z.size :]
    n_rank = int(rank.max()) + 1 if rank.size else 1
    below_all = np.searchsorted(np.sort(rank_z), rank_x, side="left")
    key_z = np.sort(unit_z.astype(np.int64) * n_rank + rank_z)
    unit_start = np.searchsorted(key_z, unit_x * n_rank, side="left")
    unit_end = np.searchsorted(key_z, (unit_x + 1) * n_rank, side="left")
    below_same = (
        np.searchsorted(key_z, unit_x * n_rank + rank_x, side="left") - unit_start
    )
    others = ratio_z.size - (unit_end - unit_start)
    fraction = np.full(bound_x.shape, 0.5)
    np.divide(below_all - below_same, others, out=fraction, where=others > 0)
    return fraction
