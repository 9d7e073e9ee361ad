"""The LOSS attack: threshold one model's own signal.

Yeom et al. (2018) observed that a model's loss is lower on its members. The score
needs no reference models: it is the target's own signal on each frame.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from thermia.attacks.core import MembershipView, Turn, check_params, pool_frames

logger = logging.getLogger(__name__)


def loss_attack(
    view: MembershipView,
    signals: Mapping[str, np.ndarray],
    turn: Turn,
    params: Mapping[str, Any],
    rng: np.random.Generator,
) -> np.ndarray:
    """Score the target's pool frames by its own signal.

    Parameters
    ----------
    view : MembershipView
    signals : mapping
        Output of :func:`thermia.attacks.signals.compute_signals`.
    turn : Turn
        Only ``turn.target`` is read; the shadows are not needed.
    params : mapping
        ``signal``: ``"loss"`` (default; the score is ``-loss``), ``"phi"`` or
        ``"p_true"`` (the score is the signal itself).
    rng : numpy.random.Generator
        Unused; the attack is deterministic.

    Returns
    -------
    ndarray of shape (n_pool_frames,)
        Scores of ``pool_frames(view, turn.target)``; higher means more likely a
        member (label 1 = member).
    """
    check_params("loss", params, ("signal",))
    signal = params.get("signal", "loss")
    if signal not in ("loss", "phi", "p_true"):
        raise ValueError(
            f"loss attack: signal must be loss, phi or p_true, got {signal!r}"
        )
    values = signals[signal][turn.target, pool_frames(view, turn.target)]
    return -values if signal == "loss" else values.copy()
