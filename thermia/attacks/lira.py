"""LiRA, the likelihood-ratio attack.

Carlini et al., "Membership Inference Attacks From First Principles" (IEEE S&P 2022),
https://arxiv.org/abs/2112.03570. For each frame the logit-scaled confidence ``phi``
of the shadows that did not train on its unit (OUT) and of those that did (IN) is
modelled as a Gaussian; the target's ``phi`` is then compared with them.

- Offline (OUT shadows only): ``score = log Phi(z) - log Phi(-z)`` with
  ``z = (phi_target - mu_out) / sigma_out``, a log-odds that grows with ``z``.
- Online (IN and OUT shadows): ``score = log N(phi; mu_in, sigma_in)
  - log N(phi; mu_out, sigma_out)``, a log-likelihood ratio.

Both are additive across frames, so a unit's "sum" aggregation is its log-odds or
log-likelihood ratio under independent frames. Higher means more likely a member.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import log_ndtr

from thermia.attacks.core import MembershipView, Turn, check_params, pool_frames

logger = logging.getLogger(__name__)


def lira_offline(
    view: MembershipView,
    signals: Mapping[str, np.ndarray],
    turn: Turn,
    params: Mapping[str, Any],
    rng: np.random.Generator,
) -> np.ndarray:
    """Offline LiRA: compare the target's ``phi`` with the OUT shadows only.

    Parameters
    ----------
    view : MembershipView
    signals : mapping
        Output of :func:`thermia.attacks.signals.compute_signals` (``phi`` is read).
    turn : Turn
        Target and its shadows (at least one).
    params : mapping
        ``fixed_variance`` (bool, default True): one pooled sigma for all frames,
        which the paper recommends with few shadows; with False a frame's own
        sigma is used where it has at least 2 OUT values. ``min_sigma`` (float,
        default 1e-3): lower bound on every sigma.
    rng : numpy.random.Generator
        Unused; the attack is deterministic.

    Returns
    -------
    ndarray of shape (n_pool_frames,)
        Log-odds scores of ``pool_frames(view, turn.target)``; higher means more
        likely a member (label 1 = member).
    """
    check_params("lira_offline", params, ("fixed_variance", "min_sigma"))
    phi_target, phi_shadow, held = _shadow_phi(view, signals, turn)
    out = _gaussian(phi_shadow, ~held, params, "OUT")
    return _offline_score(phi_target, *out)


def lira_online(
    view: MembershipView,
    signals: Mapping[str, np.ndarray],
    turn: Turn,
    params: Mapping[str, Any],
    rng: np.random.Generator,
) -> np.ndarray:
    """Online LiRA: likelihood ratio of the target's ``phi`` under IN vs OUT.

    Frames with no IN shadow are scored offline (logged). Parameters as for
    :func:`lira_offline`; the same ``fixed_variance`` applies to IN and OUT.

    Returns
    -------
    ndarray of shape (n_pool_frames,)
        Log-likelihood-ratio scores of ``pool_frames(view, turn.target)``; higher
        means more likely a member (label 1 = member).

    Raises
    ------
    ValueError
        If no shadow trained on any unit of the target's pool, as in scheme
        "disjoint": online LiRA needs scheme "independent" or "rotate".
    """
    check_params("lira_online", params, ("fixed_variance", "min_sigma"))
    phi_target, phi_shadow, held = _shadow_phi(view, signals, turn)
    if not held.any():
        raise ValueError(
            f"online LiRA needs IN shadows, but none of the shadows of target "
            f"{turn.target} trained on any unit of its pool (as in scheme "
            "'disjoint'); use scheme 'independent' or 'rotate', or lira_offline"
        )
    mu_in, sigma_in = _gaussian(phi_shadow, held, params, "IN")
    mu_out, sigma_out = _gaussian(phi_shadow, ~held, params, "OUT")
    score = _log_normal(phi_target, mu_in, sigma_in) - _log_normal(
        phi_target, mu_out, sigma_out
    )
    no_in = ~held.any(axis=0)
    if no_in.any():
        logger.info(
            "online LiRA, target %d: %d of %d frames have no IN shadow; scored offline",
            turn.target,
            int(no_in.sum()),
            no_in.size,
        )
        score[no_in] = _offline_score(
            phi_target[no_in], mu_out[no_in], sigma_out[no_in]
        )
    return score


def _shadow_phi(
    view: MembershipView, signals: Mapping[str, np.ndarray], turn: Turn
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target ``phi`` (n,), shadow ``phi`` (k, n) and IN mask (k, n) on the pool."""
    if not turn.shadows:
        raise ValueError(
            f"LiRA needs at least one shadow model; target {turn.target} has none"
        )
    frames = pool_frames(view, turn.target)
    shadows = np.asarray(turn.shadows, dtype=np.int64)
    phi = signals["phi"]
    held = view.keep[shadows][:, view.units[frames]]
    return phi[turn.target, frames], phi[shadows][:, frames], held


def _gaussian(
    values: np.ndarray, mask: np.ndarray, params: Mapping[str, Any], side: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean and sigma of ``values`` where ``mask`` holds.

    Parameters
    ----------
    values, mask : ndarray of shape (n_shadows, n_frames)

    Returns
    -------
    mu, sigma : ndarray of shape (n_frames,)
        A frame with no value takes the mean of all values; its sigma, and that of
        every frame under ``fixed_variance`` or with fewer than 2 values, is the
        pooled within-frame sigma.
    """
    fixed = bool(params.get("fixed_variance", True))
    min_sigma = float(params.get("min_sigma", 1e-3))
    count = mask.sum(axis=0)
    total = int(count.sum())
    if total == 0:
        raise ValueError(f"LiRA: no {side} shadow values for any frame of the pool")
    masked = np.where(mask, values, 0.0)
    mu = np.where(
        count > 0, masked.sum(axis=0) / np.maximum(count, 1), masked.sum() / total
    )
    squares = np.where(mask, (values - mu) ** 2, 0.0).sum(axis=0)
    dof = np.maximum(count - 1, 0)
    if dof.sum() > 0:
        pooled = np.sqrt(squares.sum() / dof.sum())
    elif total >= 2:
        pooled = float(np.std(values[mask], ddof=1))
    else:
        pooled = 1.0
    sigma = np.full(count.shape, pooled)
    if not fixed:
        own = count >= 2
        sigma[own] = np.sqrt(squares[own] / dof[own])
        if not own.all():
            logger.info(
                "LiRA: %d of %d frames have fewer than 2 %s shadow values; "
                "used the pooled sigma",
                int((~own).sum()),
                own.size,
                side,
            )
    if (count == 0).any():
        logger.info(
            "LiRA: %d of %d frames have no %s shadow value; used the mean of all",
            int((count == 0).sum()),
            count.size,
            side,
        )
    return mu, np.maximum(sigma, min_sigma)


def _offline_score(phi: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``log Phi(z) - log Phi(-z)``, ``z = (phi - mu) / sigma``; increasing in z."""
    z = (phi - mu) / sigma
    return log_ndtr(z) - log_ndtr(-z)


def _log_normal(x: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Gaussian log-density without the constant ``-log(2 pi) / 2``."""
    return -0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma)
