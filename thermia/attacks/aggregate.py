"""From frame scores to unit scores.

Membership is decided per *unit* (subject, session or frame), while every attack
scores frames. A unit's score summarises the scores of its frames.
"""

from __future__ import annotations

import numpy as np

AGGREGATIONS = ("mean", "max", "sum")


def aggregate(
    frame_scores: np.ndarray, frame_units: np.ndarray, how: str
) -> tuple[np.ndarray, np.ndarray]:
    """Summarise frame scores per unit.

    Parameters
    ----------
    frame_scores : ndarray of shape (n_frames,)
        Attack scores; higher means more likely a member.
    frame_units : ndarray of shape (n_frames,)
        Integer unit of each frame (any integer key, e.g. a combined
        ``(model, unit)`` key).
    how : {"mean", "max", "sum"}
        ``"mean"``: average frame score. ``"max"``: the most member-like frame.
        ``"sum"``: total of the frame scores; for LiRA, whose frame scores are
        log-likelihood ratios, this is the log-likelihood ratio of the whole unit
        under independent frames. For other attacks ``"sum"`` is allowed, but it is
        rank-equivalent to ``"mean"`` only when every unit has the same number of
        frames; otherwise units with more frames are pushed towards the extremes.

    Returns
    -------
    unit_ids : ndarray of shape (n_units_seen,)
        The distinct units, ascending.
    unit_scores : ndarray of shape (n_units_seen,), float64
        Higher means more likely a member.
    """
    scores = np.asarray(frame_scores, dtype=np.float64)
    units = np.asarray(frame_units)
    if scores.shape != units.shape or scores.ndim != 1:
        raise ValueError(
            "frame_scores and frame_units must be 1-D arrays of the same length, "
            f"got {scores.shape} and {units.shape}"
        )
    unit_ids, inverse = np.unique(units, return_inverse=True)
    if unit_ids.size == 0:
        return unit_ids, np.zeros(0)
    if how in ("sum", "mean"):
        total = np.bincount(inverse, weights=scores, minlength=unit_ids.size)
        if how == "sum":
            return unit_ids, total
        return unit_ids, total / np.bincount(inverse, minlength=unit_ids.size)
    if how == "max":
        order = np.argsort(inverse, kind="stable")
        starts = np.searchsorted(inverse[order], np.arange(unit_ids.size))
        return unit_ids, np.maximum.reduceat(scores[order], starts)
    raise ValueError(f"unknown aggregation {how!r}; choose one of mean, max, sum")
