"""Figures of attack results: ROC curves and score histograms, saved as PNG.

Figures are drawn with matplotlib's object API on the Agg canvas, so no display
and no global pyplot state are involved, and saved through
:func:`thermia.io.atomic_path`: a failed save leaves no partial file behind.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from thermia.io import atomic_path

logger = logging.getLogger(__name__)

__all__ = ["plot_roc", "plot_score_histograms"]


def _save_png(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` to ``path`` as PNG via a temporary file and a rename."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    logger.info("wrote %s", path)


def plot_roc(
    curves: Mapping[str, tuple],
    path: str | os.PathLike[str],
    title: str | None = None,
    min_fpr: float | None = None,
) -> None:
    """Plot ROC curves of several attacks with a log-scaled FPR axis.

    Parameters
    ----------
    curves : mapping of str to tuple
        Attack name -> ``(fpr, tpr)`` or ``(fpr, tpr, auc)``; ``fpr`` and ``tpr``
        have shape ``(n_points,)`` (as from
        :func:`thermia.evaluation.metrics.roc_curve`, where the score is higher for
        a more likely member). With an ``auc`` the legend shows it.
    path : str or path-like
        Output PNG file.
    title : str, optional
        Figure title.
    min_fpr : float, optional
        Left end of the FPR axis. By default 1e-3, or the smallest non-zero FPR
        of any curve when that is smaller. Points with a smaller FPR (notably
        FPR = 0) are drawn at the left edge.

    Notes
    -----
    Curves are drawn as steps that hold each TPR until the next point's FPR, so
    the height at any FPR is the TPR at that FPR as
    :func:`thermia.evaluation.metrics.tpr_at_fpr` reads it (no interpolation).
    """
    if not curves:
        raise ValueError("no curves to plot")
    if min_fpr is None:
        positive = [
            np.min(fpr[fpr > 0])
            for fpr in (np.asarray(curve[0], dtype=float) for curve in curves.values())
            if np.any(fpr > 0)
        ]
        min_fpr = min([1e-3, *positive])
    if not 0 < min_fpr < 1:
        raise ValueError(f"min_fpr must lie in (0, 1); got {min_fpr}")

    fig = Figure(figsize=(5.5, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    chance = np.logspace(math.log10(min_fpr), 0, 200)
    ax.plot(chance, chance, linestyle="--", color="0.6", label="chance")
    for name, curve in curves.items():
        fpr = np.clip(np.asarray(curve[0], dtype=float), min_fpr, 1)
        tpr = np.asarray(curve[1], dtype=float)
        label = name if len(curve) < 3 else f"{name} (AUC {float(curve[2]):.3f})"
        ax.plot(fpr, tpr, drawstyle="steps-post", label=label)
    ax.set_xscale("log")
    ax.set_xlim(min_fpr, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (non_members flagged)")
    ax.set_ylabel("true positive rate (members flagged)")
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    _save_png(fig, path)


def plot_score_histograms(
    scores_by_attack: Mapping[str, tuple],
    path: str | os.PathLike[str],
    bins: int = 50,
) -> None:
    """Overlay member and non_member score histograms, one panel per attack.

    Parameters
    ----------
    scores_by_attack : mapping of str to tuple
        Attack name -> ``(member_scores, non_member_scores)``, each of shape
        ``(n,)``; higher scores mean more likely a member.
    path : str or path-like
        Output PNG file.
    bins : int, default 50
        Number of bins, shared by both histograms of a panel. Histograms are
        normalised to unit area, so unequal class sizes stay comparable.
    """
    if not scores_by_attack:
        raise ValueError("no scores to plot")
    n_panels = len(scores_by_attack)
    n_cols = min(n_panels, 3)
    n_rows = math.ceil(n_panels / n_cols)
    fig = Figure(figsize=(4 * n_cols, 3.2 * n_rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, (name, (member, non_member)) in zip(
        axes, scores_by_attack.items(), strict=False
    ):
        member = np.asarray(member, dtype=float).ravel()
        non_member = np.asarray(non_member, dtype=float).ravel()
        both = np.concatenate([member, non_member])
        both = both[np.isfinite(both)]
        edges = np.histogram_bin_edges(both if both.size else [0.0, 1.0], bins=bins)
        for scores, label in ((non_member, "non_member"), (member, "member")):
            scores = scores[np.isfinite(scores)]
            if scores.size:
                ax.hist(scores, bins=edges, density=True, alpha=0.5, label=label)
        ax.set_title(name)
        ax.set_xlabel("score (higher = member)")
        ax.set_ylabel("density")
        ax.legend(fontsize="small")
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    fig.tight_layout()
    _save_png(fig, path)
