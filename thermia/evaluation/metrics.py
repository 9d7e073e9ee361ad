"""Metrics for membership inference: ROC, TPR at fixed FPR, intervals.

Conventions shared by every function here:

- ``y_true`` has shape ``(n_samples,)`` with label 1 = member, 0 = non_member;
- ``y_score`` has shape ``(n_samples,)``; higher means more likely a member, and a
  threshold ``t`` predicts "member" for every sample with ``score >= t``;
- ``sample_weight`` (optional) has shape ``(n_samples,)`` with non-negative weights.
  Frame-level figures that weight each unit equally pass ``1 / n_frames`` of the
  frame's unit;
- ``groups`` has shape ``(n_samples,)`` and holds the unit id (int or str) of each
  sample. Intervals resample units, never single samples.

Weighted sums are exact for integer weights; for fractional weights a false
positive rate is compared with ``alpha`` up to a relative tolerance of ``1e-9``, so
that, for instance, ten non-member units of three frames each (weight ``1/3``) reach
an FPR of exactly 0.1 after one unit.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator, Sequence

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "auc",
    "bootstrap_unit_indices",
    "choose_threshold",
    "evaluate",
    "is_resolvable",
    "roc_curve",
    "threshold_metrics",
    "tpr_at_fpr",
]


# ---------------------------------------------------------------------------
# input checks and the sort-based ROC core


def _check_inputs(
    y_true, y_score, sample_weight
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate inputs; return boolean labels, float scores and float weights."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=float)
    if y_true.ndim != 1 or y_score.shape != y_true.shape:
        raise ValueError(
            f"y_true and y_score must both have shape (n_samples,); got "
            f"{y_true.shape} and {y_score.shape}"
        )
    if y_true.size == 0:
        raise ValueError("no samples")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must hold 1 (member) and 0 (non_member) only")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score holds NaN or infinite values")
    if sample_weight is None:
        weight = np.ones(y_true.shape, dtype=float)
    else:
        weight = np.asarray(sample_weight, dtype=float)
        if weight.shape != y_true.shape:
            raise ValueError(
                f"sample_weight must have shape {y_true.shape}; got {weight.shape}"
            )
        if not np.isfinite(weight).all() or (weight < 0).any():
            raise ValueError("sample_weight must be finite and non-negative")
    is_member = y_true.astype(bool)
    if not weight[is_member].sum() > 0 or not weight[~is_member].sum() > 0:
        raise ValueError(
            "both classes (member and non_member) need a positive total weight"
        )
    return is_member, y_score, weight


def _score_blocks(y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort scores in decreasing order and find the blocks of tied scores.

    Returns ``order`` (the sorting permutation), ``thresholds`` (the distinct
    scores, decreasing) and ``ends`` (the position in sorted order of the last
    sample of each block).
    """
    order = np.argsort(-y_score, kind="stable")
    sorted_score = y_score[order]
    ends = np.append(
        np.flatnonzero(sorted_score[1:] != sorted_score[:-1]), sorted_score.size - 1
    )
    return order, sorted_score[ends], ends


def _roc_points(
    member_weight: np.ndarray, non_member_weight: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ROC points from weights already sorted by decreasing score.

    The weights have shape ``(..., n_samples)``: one row per replicate, or a
    single row. Returns ``fpr`` and ``tpr`` of shape ``(..., n_thresholds + 1)``
    (starting from the point (0, 0) that predicts no member) and the total member
    and non_member weights of shape ``(...)``. A row whose class weight is zero
    gets NaN rates.
    """
    tp = np.cumsum(member_weight, axis=-1)[..., ends]
    fp = np.cumsum(non_member_weight, axis=-1)[..., ends]
    total_member = tp[..., -1]
    total_non_member = fp[..., -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tp / total_member[..., None]
        fpr = fp / total_non_member[..., None]
    origin = np.zeros((*tpr.shape[:-1], 1))
    fpr = np.concatenate([origin, fpr], axis=-1)
    tpr = np.concatenate([origin, tpr], axis=-1)
    return fpr, tpr, total_member, total_non_member


def _auc_from_points(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    """Trapezoidal area under ROC points; a tie block adds a slanted segment,
    which is the same as counting a tied member/non_member pair as half."""
    return np.sum(np.diff(fpr, axis=-1) * (tpr[..., 1:] + tpr[..., :-1]), axis=-1) / 2


def _tpr_at_fpr_from_points(
    fpr: np.ndarray, tpr: np.ndarray, alpha: float
) -> np.ndarray:
    """Largest TPR among points with FPR <= alpha (the origin always qualifies)."""
    # Relative tolerance: weighted cumulative sums of fractions such as 1/3 can
    # land a hair above a rate that is exactly alpha.
    within = fpr <= alpha * (1 + 1e-9)
    return np.max(np.where(within, tpr, 0.0), axis=-1)


def _check_alpha(alpha: float, allow_zero: bool) -> float:
    alpha = float(alpha)
    low_ok = alpha >= 0 if allow_zero else alpha > 0
    if not (low_ok and alpha <= 1):
        bounds = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"alpha must lie in {bounds}; got {alpha}")
    return alpha


# ---------------------------------------------------------------------------
# point metrics


def roc_curve(
    y_true, y_score, sample_weight=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted ROC curve keeping every distinct threshold.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = member, 0 = non_member.
    y_score : array-like of shape (n_samples,)
        Attack score; higher means more likely a member.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each sample; equal weights by default.

    Returns
    -------
    fpr, tpr : ndarray of shape (n_thresholds + 1,)
        False and true positive rates, non-decreasing, from (0, 0) to (1, 1).
    thresholds : ndarray of shape (n_thresholds + 1,)
        Decreasing; point ``k`` predicts "member" when ``score >= thresholds[k]``.
        ``thresholds[0]`` is ``inf`` (no sample predicted a member); the others are
        the distinct observed scores.
    """
    is_member, y_score, weight = _check_inputs(y_true, y_score, sample_weight)
    order, distinct, ends = _score_blocks(y_score)
    sorted_weight = weight[order]
    sorted_member = is_member[order]
    fpr, tpr, _, _ = _roc_points(
        sorted_weight * sorted_member, sorted_weight * ~sorted_member, ends
    )
    return fpr, tpr, np.concatenate([[np.inf], distinct])


def tpr_at_fpr(y_true, y_score, alpha: float, sample_weight=None) -> float:
    """Largest true positive rate among thresholds whose FPR is at most ``alpha``.

    Read directly off the ROC points, without interpolation between them: a level
    that no threshold reaches exactly gets the TPR of the last point below it.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = member, 0 = non_member.
    y_score : array-like of shape (n_samples,)
        Attack score; higher means more likely a member.
    alpha : float
        FPR level in [0, 1].
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each sample.

    Returns
    -------
    float
        TPR in [0, 1]; 0.0 when only the threshold that predicts no member has
        ``fpr <= alpha``.
    """
    alpha = _check_alpha(alpha, allow_zero=True)
    fpr, tpr, _ = roc_curve(y_true, y_score, sample_weight)
    return float(_tpr_at_fpr_from_points(fpr, tpr, alpha))


def auc(y_true, y_score, sample_weight=None) -> float:
    """Weighted area under the ROC curve.

    Equal to the weighted probability that a member scores above a non_member, with
    tied member/non_member pairs counted as one half.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = member, 0 = non_member.
    y_score : array-like of shape (n_samples,)
        Attack score; higher means more likely a member.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each sample.

    Returns
    -------
    float
        AUC in [0, 1]; 0.5 for a score that carries no information.
    """
    fpr, tpr, _ = roc_curve(y_true, y_score, sample_weight)
    return float(_auc_from_points(fpr, tpr))


def choose_threshold(y_true, y_score, sample_weight=None) -> float:
    """Threshold that maximises balanced accuracy on the given (shadow) data.

    Callers fit the threshold on shadow scores and apply it, unchanged, to target
    scores; choosing it on target data would overstate the attack.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = member, 0 = non_member.
    y_score : array-like of shape (n_samples,)
        Attack score; higher means more likely a member.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each sample.

    Returns
    -------
    float
        An observed score ``t``; the rule is "member when ``score >= t``". Among
        thresholds whose balanced accuracy equals the best (up to ``1e-12``), the
        smallest is returned, i.e. the rule that predicts the most members; this
        keeps the choice well defined when the best thresholds do not form one
        contiguous plateau.
    """
    fpr, tpr, thresholds = roc_curve(y_true, y_score, sample_weight)
    # thresholds[0] is inf; it scores 0.5, as does the smallest observed score.
    balanced = (tpr[1:] + 1 - fpr[1:]) / 2
    best = balanced >= balanced.max() - 1e-12
    return float(thresholds[1:][best].min())


def threshold_metrics(y_true, y_score, threshold: float, sample_weight=None) -> dict:
    """Metrics of the rule "member when ``score >= threshold``".

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = member, 0 = non_member.
    y_score : array-like of shape (n_samples,)
        Attack score; higher means more likely a member.
    threshold : float
        Decision threshold, usually from :func:`choose_threshold` on shadow data.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each sample.

    Returns
    -------
    dict
        ``tpr``, ``fpr``, ``balanced_accuracy`` (``(tpr + 1 - fpr) / 2``, blind to
        the member/non_member ratio), ``advantage`` (``tpr - fpr``), ``precision``,
        ``recall`` (equal to ``tpr``) and ``accuracy`` (plain weighted accuracy,
        which moves with the class ratio). ``precision`` is NaN, with a
        ``RuntimeWarning``, when no sample is predicted a member.
    """
    is_member, y_score, weight = _check_inputs(y_true, y_score, sample_weight)
    predicted = y_score >= threshold
    tp = weight[predicted & is_member].sum()
    fp = weight[predicted & ~is_member].sum()
    tn = weight[~predicted & ~is_member].sum()
    total_member = weight[is_member].sum()
    total_non_member = weight[~is_member].sum()
    tpr = tp / total_member
    fpr = fp / total_non_member
    if tp + fp > 0:
        precision = tp / (tp + fp)
    else:
        warnings.warn(
            f"precision is undefined: no sample scores >= threshold {threshold}",
            RuntimeWarning,
            stacklevel=2,
        )
        precision = math.nan
    return {
        "tpr": float(tpr),
        "fpr": float(fpr),
        "balanced_accuracy": float((tpr + 1 - fpr) / 2),
        "advantage": float(tpr - fpr),
        "precision": float(precision),
        "recall": float(tpr),
        "accuracy": float((tp + tn) / (total_member + total_non_member)),
    }


def is_resolvable(n_non_member_units: int, alpha: float) -> bool:
    """Whether a TPR at FPR ``alpha`` can be read from this many non_member units.

    With fewer than ``1 / alpha`` non_member units the smallest non-zero FPR is
    above ``alpha``, so the figure would only reflect the top-scored units.

    Parameters
    ----------
    n_non_member_units : int
        Number of distinct non_member units.
    alpha : float
        FPR level in (0, 1].

    Returns
    -------
    bool
        ``n_non_member_units >= 1 / alpha`` (with a small tolerance, so that 100
        units resolve ``alpha = 0.01``).
    """
    alpha = _check_alpha(alpha, allow_zero=False)
    return n_non_member_units >= (1 / alpha) * (1 - 1e-9)


# ---------------------------------------------------------------------------
# bootstrap over units


def _group_codes(groups, n_samples: int | None = None) -> tuple[np.ndarray, int]:
    """Integer code in ``[0, n_groups)`` for each sample's unit id."""
    groups = np.asarray(groups)
    if groups.ndim != 1 or (n_samples is not None and groups.size != n_samples):
        expected = "n_samples" if n_samples is None else n_samples
        raise ValueError(f"groups must have shape ({expected},); got {groups.shape}")
    unique, codes = np.unique(groups, return_inverse=True)
    return codes.reshape(-1), unique.size


def _draw_groups(
    n_groups: int, n_boot: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield, per replicate, ``n_groups`` group codes drawn with replacement."""
    for _ in range(n_boot):
        yield rng.integers(0, n_groups, size=n_groups)


def bootstrap_unit_indices(groups, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Sample indices of each unit-level bootstrap replicate.

    Each replicate draws the distinct unit ids with replacement and takes all
    samples of every drawn unit; a unit drawn twice contributes its samples twice.
    A unit scored by several target models ("turns") moves as one block. The draws
    are the ones :func:`evaluate` uses with the same ``seed``, which weights the
    samples by multiplicity instead of materialising these index arrays.

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        Unit id of each sample.
    n_boot : int
        Number of replicates.
    seed : int, default 0
        Seed of ``np.random.default_rng``.

    Yields
    ------
    ndarray of int
        Indices into the samples; its length varies between replicates.
    """
    codes, n_groups = _group_codes(groups)
    by_code = np.argsort(codes, kind="stable")
    members_of = np.split(by_code, np.cumsum(np.bincount(codes))[:-1])
    for draw in _draw_groups(n_groups, n_boot, np.random.default_rng(seed)):
        yield np.concatenate([members_of[code] for code in draw])


def _replicate_statistics(
    draws: list[np.ndarray],
    codes: np.ndarray,
    n_groups: int,
    sorted_member: np.ndarray,
    sorted_weight: np.ndarray,
    sorted_predicted: np.ndarray,
    ends: np.ndarray,
    alphas: Sequence[float],
) -> dict[str, np.ndarray]:
    """Metrics for a chunk of replicates, all inputs in decreasing-score order.

    A replicate is the full sample set reweighted by how often its unit was drawn,
    which equals concatenating the drawn units' samples and needs no re-sorting.
    """
    n_rep = len(draws)
    flat = (np.arange(n_rep)[:, None] * n_groups + np.stack(draws)).ravel()
    multiplicity = np.bincount(flat, minlength=n_rep * n_groups).reshape(
        n_rep, n_groups
    )
    weight = multiplicity[:, codes] * sorted_weight
    member_weight = weight * sorted_member
    non_member_weight = weight - member_weight
    fpr, tpr, total_member, total_non_member = _roc_points(
        member_weight, non_member_weight, ends
    )
    tp = member_weight @ sorted_predicted
    fp = non_member_weight @ sorted_predicted
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_tp = tp / total_member
        rate_fp = fp / total_non_member
        stats = {
            "valid": (total_member > 0) & (total_non_member > 0),
            "auc": _auc_from_points(fpr, tpr),
            "balanced_accuracy": (rate_tp + 1 - rate_fp) / 2,
            "advantage": rate_tp - rate_fp,
            "precision": tp / (tp + fp),
            "recall": rate_tp,
        }
    for alpha in alphas:
        stats[alpha] = _tpr_at_fpr_from_points(fpr, tpr, alpha)
    return stats


def _json_float(value) -> float | None:
    """Plain float, or None where the value is NaN (not valid JSON)."""
    value = float(value)
    return None if math.isnan(value) else value


def evaluate(
    y_true,
    y_score,
    groups,
    threshold: float,
    alphas: Sequence[float] = (0.001, 0.01, 0.1),
    sample_weight=None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict:
    """All metrics of one attack, with percentile bootstrap intervals over units.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = member, 0 = non_member.
    y_score : array-like of shape (n_samples,)
        Attack score; higher means more likely a member.
    groups : array-like of shape (n_samples,)
        Unit id (int or str) of each sample. The same unit may appear in several
        turns (scored by several target models, as member in some and non_member
        in others); the bootstrap resamples unit ids, so all of a unit's samples,
        across turns, move together.
    threshold : float
        Decision threshold for the threshold metrics, fixed beforehand (on shadow
        data); it is not re-chosen inside replicates.
    alphas : sequence of float, default (0.001, 0.01, 0.1)
        FPR levels for ``tpr_at_fpr_<alpha>``.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each sample (``1 / n_frames`` of the unit for
        unit-balanced frame figures).
    n_boot : int, default 1000
        Number of bootstrap replicates; 0 gives no intervals.
    ci : float, default 0.95
        Coverage of the percentile intervals.
    seed : int, default 0
        Seed of ``np.random.default_rng`` for the replicates.

    Returns
    -------
    dict
        Flat and JSON-ready. ``auc``, ``tpr_at_fpr_<alpha>``,
        ``balanced_accuracy``, ``advantage``, ``precision``, ``recall``, each with
        ``<name>_ci_low`` and ``<name>_ci_high``; ``tpr_at_fpr_<alpha>_resolvable``;
        ``threshold``; ``n_members`` and ``n_non_members`` (distinct units among
        member and non_member samples); ``n_samples``; ``n_boot``, ``ci`` and
        ``n_boot_skipped`` (replicates lacking a class, which are left out).

        A ``tpr_at_fpr`` level with fewer than ``1 / alpha`` distinct non_member
        units is reported as None, with None bounds and ``_resolvable`` False.
        Undefined values (a NaN precision; bounds when no replicate qualifies) are
        None. Bounds use the replicates where the metric is defined (precision is
        undefined in a replicate with no predicted member).
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must lie in (0, 1); got {ci}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0; got {n_boot}")
    if math.isnan(threshold):
        raise ValueError("threshold is NaN")
    alphas = [_check_alpha(alpha, allow_zero=False) for alpha in alphas]
    is_member, y_score, weight = _check_inputs(y_true, y_score, sample_weight)
    codes, n_groups = _group_codes(groups, y_score.size)
    n_members = np.unique(codes[is_member]).size
    n_non_members = np.unique(codes[~is_member]).size
    resolvable = {alpha: is_resolvable(n_non_members, alpha) for alpha in alphas}

    point = threshold_metrics(is_member, y_score, threshold, weight)
    point["auc"] = auc(is_member, y_score, weight)
    fpr, tpr, _ = roc_curve(is_member, y_score, weight)
    for alpha in alphas:
        point[alpha] = float(_tpr_at_fpr_from_points(fpr, tpr, alpha))

    names: list = ["auc", *alphas]
    names += ["balanced_accuracy", "advantage", "precision", "recall"]
    replicates = {name: [] for name in [*names, "valid"]}
    order, _, ends = _score_blocks(y_score)
    sorted_args = (
        codes[order],
        n_groups,
        is_member[order].astype(float),
        weight[order],
        (y_score[order] >= threshold).astype(float),
        ends,
        [alpha for alpha in alphas if resolvable[alpha]],
    )
    # Replicates are weighted copies of the whole sample set: process them in
    # chunks of about two million cells to bound memory.
    chunk = max(1, 2_000_000 // y_score.size)
    draws = _draw_groups(n_groups, n_boot, np.random.default_rng(seed))
    for start in range(0, n_boot, chunk):
        block = [next(draws) for _ in range(min(chunk, n_boot - start))]
        for key, values in _replicate_statistics(block, *sorted_args).items():
            replicates[key].append(values)
    valid = np.concatenate(replicates["valid"]) if n_boot else np.zeros(0, bool)
    n_skipped = int(valid.size - valid.sum())
    if n_boot and n_skipped > 0.1 * n_boot:
        warnings.warn(
            f"{n_skipped} of {n_boot} bootstrap replicates lack members or "
            "non_members and were skipped; intervals rest on the rest",
            RuntimeWarning,
            stacklevel=2,
        )
    logger.debug("bootstrap: %d replicates, %d skipped", n_boot, n_skipped)

    tail = (1 - ci) / 2
    result: dict = {}
    for name in names:
        key = name if isinstance(name, str) else f"tpr_at_fpr_{name:g}"
        low = high = None
        if isinstance(name, float) and not resolvable[name]:
            result[key] = None
        else:
            result[key] = _json_float(point[name])
            if replicates[name]:
                values = np.concatenate(replicates[name])[valid]
                values = values[np.isfinite(values)]
                if values.size:
                    low, high = np.quantile(values, [tail, 1 - tail])
                    low, high = float(low), float(high)
        result[f"{key}_ci_low"] = low
        result[f"{key}_ci_high"] = high
        if isinstance(name, float):
            result[f"{key}_resolvable"] = resolvable[name]
    result.update(
        threshold=float(threshold),
        n_members=int(n_members),
        n_non_members=int(n_non_members),
        n_samples=int(y_score.size),
        n_boot=int(n_boot),
        ci=float(ci),
        n_boot_skipped=n_skipped,
    )
    return result
