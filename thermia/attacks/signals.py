"""Per-model, per-frame signals derived from logits.

A *signal* is what one model emits for one frame; attacks turn signals into scores.
Every function here is vectorised over models and frames and works in float64.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def as_two_column(logits: np.ndarray) -> np.ndarray:
    """Return logits with at least two class columns.

    A binary model with a single output column emits the log-odds ``z`` of class 1;
    it is the same model as one with the two logits ``[0, z]``.

    Parameters
    ----------
    logits : ndarray of shape (n_models, n_frames, n_classes)

    Returns
    -------
    ndarray of shape (n_models, n_frames, max(n_classes, 2)), float64
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3:
        raise ValueError(
            "logits must have shape (n_models, n_frames, n_classes), "
            f"got {logits.shape}"
        )
    if logits.shape[2] == 1:
        return np.concatenate([np.zeros_like(logits), logits], axis=2)
    return logits


def compute_signals(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Compute the signals every attack reads.

    Parameters
    ----------
    logits : ndarray of shape (n_models, n_frames, n_classes)
        Raw model outputs. ``n_classes == 1`` means a binary model whose single
        column is the log-odds of class 1; it gives exactly the signals of the
        two-column model ``[0, z]``.
    labels : ndarray of shape (n_frames,)
        True class of each frame, in ``0 .. max(n_classes, 2) - 1``.

    Returns
    -------
    dict of str to ndarray
        ``loss`` (n_models, n_frames): cross-entropy of the true class (lower on
        members). ``p_true`` (n_models, n_frames): probability of the true class.
        ``phi`` (n_models, n_frames): logit-scaled confidence
        ``log p_y - log(1 - p_y)``, computed as ``z_y - logsumexp(z_other)`` so that
        it stays finite for finite logits. ``probs`` (n_models, n_frames, n_classes')
        and ``probs_sorted`` (same shape, each row in descending order), with
        ``n_classes' = max(n_classes, 2)``. All float64; higher ``p_true`` and
        ``phi`` point towards member.
    """
    z = as_two_column(logits)
    labels = np.asarray(labels)
    n_models, n_frames, n_classes = z.shape
    if labels.shape != (n_frames,):
        raise ValueError(f"labels must have shape ({n_frames},), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits must be finite")

    log_norm = logsumexp(z, axis=2)
    log_probs = z - log_norm[:, :, None]
    index = np.broadcast_to(labels[None, :, None], (n_models, n_frames, 1))
    z_true = np.take_along_axis(z, index, axis=2)[:, :, 0]
    is_true = np.arange(n_classes)[None, None, :] == labels[None, :, None]
    z_other = np.where(is_true, -np.inf, z)
    phi = z_true - logsumexp(z_other, axis=2)
    log_p_true = z_true - log_norm
    probs = np.exp(log_probs)
    return {
        "loss": -log_p_true,
        "p_true": np.exp(log_p_true),
        "phi": phi,
        "probs": probs,
        "probs_sorted": -np.sort(-probs, axis=2),
    }
