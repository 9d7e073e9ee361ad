"""The attack driver.

Every attack reads the same few arrays (:class:`MembershipView`): the logits of every
model on every frame and the membership matrix ``keep``. A :class:`Turn` names one
model as target and others as its shadows. :func:`run_attack` scores the target's
evaluation pool and makes every decision (thresholds, frame-to-unit aggregation,
tunable attack parameters) on the shadows alone, by letting each shadow in turn play
a pseudo-target against the remaining shadows ("leave one shadow out"). The
target's own membership row is read only to label its scores in the result.

Scores always point one way: higher means more likely a member; label 1 = member.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from thermia.attacks.aggregate import aggregate
from thermia.attacks.signals import compute_signals
from thermia.evaluation.metrics import auc, choose_threshold
from thermia.io import atomic_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class MembershipView:
    """The arrays every attack reads.

    Attributes
    ----------
    logits : ndarray of shape (n_models, n_frames, n_classes)
        Every model's logits on every frame. ``n_classes`` may be 1: a binary model
        whose single logit is the log-odds of class 1.
    labels : ndarray of shape (n_frames,)
        True class of each frame.
    units : ndarray of shape (n_frames,)
        Unit index (``0 .. n_units - 1``) of each frame.
    keep : ndarray of shape (n_models, n_units), bool
        ``keep[m, u]``: model ``m`` was trained on unit ``u`` (member).
    pool : ndarray of shape (n_models, n_units), bool
        ``pool[m, u]``: unit ``u`` is in model ``m``'s evaluation pool, i.e. among
        its members and the non-members it is evaluated on.
    """

    logits: np.ndarray
    labels: np.ndarray
    units: np.ndarray
    keep: np.ndarray
    pool: np.ndarray

    def __post_init__(self) -> None:
        logits = np.asarray(self.logits, dtype=np.float64)
        labels = np.asarray(self.labels).astype(np.int64, copy=False)
        units = np.asarray(self.units).astype(np.int64, copy=False)
        keep = np.asarray(self.keep, dtype=bool)
        pool = np.asarray(self.pool, dtype=bool)
        if logits.ndim != 3:
            raise ValueError(
                "logits must have shape (n_models, n_frames, n_classes), "
                f"got {logits.shape}"
            )
        n_models, n_frames, _ = logits.shape
        if labels.shape != (n_frames,) or units.shape != (n_frames,):
            raise ValueError(
                f"labels and units must have shape ({n_frames},), "
                f"got {labels.shape} and {units.shape}"
            )
        if keep.ndim != 2 or keep.shape[0] != n_models or pool.shape != keep.shape:
            raise ValueError(
                f"keep and pool must have shape ({n_models}, n_units), "
                f"got {keep.shape} and {pool.shape}"
            )
        if units.size and (units.min() < 0 or units.max() >= keep.shape[1]):
            raise ValueError(f"units must lie in 0..{keep.shape[1] - 1}")
        if np.any(keep & ~pool):
            raise ValueError("every unit a model trained on must be in its pool")
        for name, value in (
            ("logits", logits),
            ("labels", labels),
            ("units", units),
            ("keep", keep),
            ("pool", pool),
        ):
            object.__setattr__(self, name, value)

    @property
    def n_models(self) -> int:
        """Number of models (target and shadows)."""
        return self.keep.shape[0]

    @property
    def n_units(self) -> int:
        """Number of membership units."""
        return self.keep.shape[1]

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return self.units.shape[0]


@dataclass(frozen=True)
class Turn:
    """One model plays target; ``shadows`` are the models it is compared with."""

    target: int
    shadows: tuple[int, ...]


def scheme_turns(scheme: str, n_models: int) -> list[Turn]:
    """The turns of a split scheme: model 0 against the rest, or each in turn."""
    models = range(n_models)
    if scheme == "rotate":
        return [Turn(t, tuple(m for m in models if m != t)) for t in models]
    return [Turn(0, tuple(models[1:]))]


AttackFn = Callable[
    [
        MembershipView,
        Mapping[str, np.ndarray],
        Turn,
        Mapping[str, Any],
        np.random.Generator,
    ],
    np.ndarray,
]


def pool_frames(view: MembershipView, model: int) -> np.ndarray:
    """Indices of the frames whose unit is in ``model``'s evaluation pool.

    Returns
    -------
    ndarray of shape (n_pool_frames,), int, ascending.
    """
    return np.flatnonzero(view.pool[model, view.units])


def check_params(
    attack: str, params: Mapping[str, Any], allowed: Sequence[str]
) -> None:
    """Raise ``ValueError`` if ``params`` has a key ``attack`` does not understand."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"attack {attack!r} got unknown parameters {unknown}; "
            f"it accepts {sorted(allowed)}"
        )


def attack_registry() -> dict[str, AttackFn]:
    """Map each attack name to its scoring function.

    Every function has the signature ``fn(view, signals, turn, params, rng)`` and
    returns the scores of the frames ``pool_frames(view, turn.target)``, shape
    (n_pool_frames,); higher means more likely a member.
    """
    # Imported here: the attack modules import the view and helpers from this module.
    from thermia.attacks import lira, rmia, shokri, threshold

    return {
        "shokri": shokri.shokri_attack,
        "loss": threshold.loss_attack,
        "lira_offline": lira.lira_offline,
        "lira_online": lira.lira_online,
        "rmia": rmia.rmia_attack,
    }


@dataclass(eq=False)
class AttackResult:
    """Scores of one attack over one or more turns, with the decisions taken.

    Frame-level arrays have shape (n_scored_frames,), concatenated over turns;
    unit-level arrays have shape (n_scored_units,); per-turn arrays have shape
    (n_turns,). Scores: higher means more likely a member; ``member`` is 1 for a
    member of that turn's target. A frame is predicted member when
    ``frame_score >= frame_threshold[turn]``; a unit when
    ``unit_score >= unit_threshold[unit_turn]``.

    Attributes
    ----------
    name : str
        Attack name.
    frame_index, frame_score, member, unit, turn : ndarray
        Scored frames of each target's pool, their score, membership, unit and turn.
    unit_turn, unit_id, unit_score, unit_member : ndarray
        Unit scores under the aggregation chosen for their turn.
    unit_scores_by_aggregation : dict of str to ndarray
        Unit scores under each of "mean", "max" and "sum", aligned with ``unit_id``.
    turn_target : ndarray of shape (n_turns,)
        Target model of each turn.
    frame_threshold, unit_threshold : ndarray of shape (n_turns,)
        Thresholds chosen for each turn.
    aggregation, decisions_source : tuple of str, one per turn
        Chosen aggregation; ``"shadows"`` if the decisions came from pseudo-targets,
        ``"default"`` if there were too few shadows and defaults were used.
    chosen_params : dict of str to ndarray of shape (n_turns,)
        Attack parameters chosen on shadows (e.g. RMIA ``a``).
    pseudo_turn, pseudo_target, pseudo_frame_index, pseudo_score, pseudo_member
        The pooled pseudo-target frame scores the decisions were made from.
    params : dict
        The attack parameters as given.
    seed : int
        Base seed of the run.
    """

    name: str
    frame_index: np.ndarray
    frame_score: np.ndarray
    member: np.ndarray
    unit: np.ndarray
    turn: np.ndarray
    unit_turn: np.ndarray
    unit_id: np.ndarray
    unit_score: np.ndarray
    unit_member: np.ndarray
    unit_scores_by_aggregation: dict[str, np.ndarray]
    turn_target: np.ndarray
    frame_threshold: np.ndarray
    unit_threshold: np.ndarray
    aggregation: tuple[str, ...]
    decisions_source: tuple[str, ...]
    chosen_params: dict[str, np.ndarray]
    pseudo_turn: np.ndarray
    pseudo_target: np.ndarray
    pseudo_frame_index: np.ndarray
    pseudo_score: np.ndarray
    pseudo_member: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the result to an HDF5 file, atomically (no partial file on error)."""
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            for item in dataclasses.fields(self):
                value = getattr(self, item.name)
                if isinstance(value, np.ndarray):
                    f.create_dataset(item.name, data=value)
                elif isinstance(value, dict) and item.name != "params":
                    group = f.create_group(item.name)
                    for key, array in value.items():
                        group.create_dataset(key, data=np.asarray(array))
                elif isinstance(value, tuple):
                    f.create_dataset(
                        item.name, data=np.array(value, dtype=h5py.string_dtype())
                    )
            f.attrs["name"] = self.name
            f.attrs["seed"] = int(self.seed)
            f.attrs["params"] = json.dumps(self.params, sort_keys=True, default=_plain)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AttackResult:
        """Read a result written by :meth:`save`."""
        values: dict[str, Any] = {}
        with h5py.File(path, "r") as f:
            for item in dataclasses.fields(cls):
                if item.name in f.attrs:
                    continue
                node = f[item.name]
                if isinstance(node, h5py.Group):
                    values[item.name] = {key: node[key][()] for key in node}
                elif h5py.check_string_dtype(node.dtype) is not None:
                    values[item.name] = tuple(node.asstr()[()].tolist())
                else:
                    values[item.name] = node[()]
            values["name"] = str(f.attrs["name"])
            values["seed"] = int(f.attrs["seed"])
            values["params"] = json.loads(f.attrs["params"])
        return cls(**values)


def _plain(value: Any) -> Any:
    """Turn numpy scalars and arrays into JSON-friendly Python values."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store parameter value of type {type(value).__name__}")


def run_attack(
    name: str,
    view: MembershipView,
    turns: Sequence[Turn],
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    max_pseudo_targets: int | None = None,
) -> AttackResult:
    """Run one attack over the given turns.

    For each turn the target's pool frames are scored, and every decision is made
    on the turn's shadows only: each shadow ``k`` plays pseudo-target against the
    other shadows, and the pooled pseudo-target scores (whose membership is known)
    give (a) the frame threshold maximising balanced accuracy with frames weighted
    by ``1 / frames of their unit``, (b) the aggregation ("mean", "max", "sum")
    with the best unit-level AUC, (c) the unit threshold maximising unit-level
    balanced accuracy and, for "rmia" without a fixed ``a``, ``a`` from the grid
    0, 0.1, ..., 1 by pseudo-target AUC (frames weighted as in (a)).

    With too few shadows for a pseudo-target (fewer than 2; for "loss", which
    needs no reference model, fewer than 1) defaults are used and recorded as
    ``decisions_source = "default"``: aggregation "mean"; frame and unit threshold
    0.5 for "shokri" (probabilities) and "rmia" (fractions), 0 for LiRA (log-odds
    or log-likelihood ratios) and, for "loss", the median of the target's own
    frame scores (which reads no membership); RMIA ``a`` = 0.3.

    Parameters
    ----------
    name : {"shokri", "loss", "lira_offline", "lira_online", "rmia"}
    view : MembershipView
    turns : sequence of Turn
        One turn (schemes "disjoint" and "independent") or one per model
        ("rotate"). Decisions are made per turn, from that turn's shadows only.
    params : mapping, optional
        Attack parameters; see each attack's function.
    seed : int
        Base seed; every random draw derives from ``(seed, turn, pseudo-target)``.
    max_pseudo_targets : int, optional
        Use only the first this many shadows of each turn as pseudo-targets (all
        by default); bounds the cost of Shokri, which fits one model per class
        and pseudo-target.

    Returns
    -------
    AttackResult
        Higher scores mean more likely a member; label 1 = member.
    """
    registry = attack_registry()
    if name not in registry:
        raise ValueError(f"unknown attack {name!r}; choose one of {sorted(registry)}")
    if not turns:
        raise ValueError("run_attack needs at least one turn")
    params = dict(params or {})
    signals = compute_signals(view.logits, view.labels)
    outcomes = [
        _run_turn(
            name,
            registry[name],
            view,
            signals,
            turn,
            index,
            params,
            seed,
            max_pseudo_targets,
        )
        for index, turn in enumerate(turns)
    ]
    return _assemble(name, view, turns, outcomes, params, seed)


def _run_turn(
    name: str,
    fn: AttackFn,
    view: MembershipView,
    signals: Mapping[str, np.ndarray],
    turn: Turn,
    turn_index: int,
    params: dict[str, Any],
    seed: int,
    max_pseudo_targets: int | None,
) -> dict[str, Any]:
    """Score one turn's target and take its decisions on its shadows."""
    _check_turn(view, turn)
    min_shadows = 1 if name == "loss" else 2
    pseudo_models = turn.shadows if len(turn.shadows) >= min_shadows else ()
    if max_pseudo_targets is not None:
        pseudo_models = pseudo_models[:max_pseudo_targets]
    pseudo_turns = [
        Turn(k, tuple(s for s in turn.shadows if s != k)) for k in pseudo_models
    ]

    def rng(slot: int) -> np.random.Generator:
        return np.random.default_rng((seed, turn_index, slot))

    def score_pseudo(run_params: Mapping[str, Any]) -> list[np.ndarray]:
        return [
            fn(view, signals, pseudo, run_params, rng(slot + 1))
            for slot, pseudo in enumerate(pseudo_turns)
        ]

    chosen: dict[str, float] = {}
    pseudo_scores: list[np.ndarray] | None = None
    if name == "rmia" and "a" not in params and not params.get("online", False):
        a, pseudo_scores = _choose_rmia_a(view, pseudo_turns, params, score_pseudo)
        chosen["a"] = 0.3 if a is None else a
    run_params = {**params, **chosen}
    target_scores = fn(view, signals, turn, run_params, rng(0))
    target_frames = pool_frames(view, turn.target)

    decisions = None
    if pseudo_turns:
        if pseudo_scores is None:
            pseudo_scores = score_pseudo(run_params)
        pseudo = _pool_pseudo(view, pseudo_turns, pseudo_scores)
        decisions = _decide(pseudo)
        if decisions is None:
            logger.warning(
                "%s, turn %d: pseudo-target scores lack members or non-members; "
                "using default decisions",
                name,
                turn_index,
            )
    else:
        pseudo = _pool_pseudo(view, [], [])
        logger.info(
            "%s, turn %d: %d shadow(s) are too few for pseudo-targets; "
            "using default decisions",
            name,
            turn_index,
            len(turn.shadows),
        )
    if decisions is None:
        default = _default_threshold(name, target_scores)
        decisions = {
            "frame_threshold": default,
            "aggregation": "mean",
            "unit_threshold": default,
            "source": "default",
        }
    return {
        "frames": target_frames,
        "scores": np.asarray(target_scores, dtype=np.float64),
        "pseudo": pseudo,
        "chosen": chosen,
        **decisions,
    }


def _check_turn(view: MembershipView, turn: Turn) -> None:
    models = (turn.target, *turn.shadows)
    if any(not 0 <= m < view.n_models for m in models):
        raise ValueError(f"turn {turn} names a model outside 0..{view.n_models - 1}")
    if len(set(models)) != len(models):
        raise ValueError(f"turn {turn} names a model twice")


def _choose_rmia_a(
    view: MembershipView,
    pseudo_turns: Sequence[Turn],
    params: Mapping[str, Any],
    score_pseudo: Callable[[Mapping[str, Any]], list[np.ndarray]],
) -> tuple[float | None, list[np.ndarray] | None]:
    """Pick RMIA's ``a`` from 0, 0.1, ..., 1 by pooled pseudo-target frame AUC.

    Returns the chosen ``a`` and the pseudo-target scores under it, or
    ``(None, None)`` when there are no pseudo-targets or they lack members or
    non-members.
    """
    if not pseudo_turns:
        return None, None
    best: tuple[float, float, list[np.ndarray]] | None = None
    for a in np.round(np.linspace(0.0, 1.0, 11), 1):
        scores = score_pseudo({**params, "a": float(a)})
        pseudo = _pool_pseudo(view, pseudo_turns, scores)
        if pseudo["member"].all() or not pseudo["member"].any():
            return None, None
        value = auc(pseudo["member"], pseudo["score"], pseudo["weight"])
        if best is None or value > best[1]:
            best = (float(a), value, scores)
    assert best is not None
    return best[0], best[2]


def _pool_pseudo(
    view: MembershipView, pseudo_turns: Sequence[Turn], scores: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """Concatenate pseudo-target frame scores with membership, units and weights."""
    frames = [pool_frames(view, p.target) for p in pseudo_turns]
    targets = [
        np.full(f.size, p.target) for f, p in zip(frames, pseudo_turns, strict=True)
    ]
    frame = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int64)
    target = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
    unit = view.units[frame]
    key = target * view.n_units + unit
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return {
        "frame": frame,
        "target": target,
        "unit": unit,
        "key": key,
        "score": np.concatenate(scores) if scores else np.zeros(0),
        "member": view.keep[target, unit],
        "weight": 1.0 / counts[inverse] if frame.size else np.zeros(0),
    }


def _decide(pseudo: Mapping[str, np.ndarray]) -> dict[str, Any] | None:
    """Thresholds and aggregation from pooled pseudo-target scores."""
    member = pseudo["member"]
    if member.all() or not member.any():
        return None
    # Frames are weighted 1 / (frames of their unit) so that every unit counts once.
    frame_threshold = choose_threshold(member, pseudo["score"], pseudo["weight"])
    key_member = dict(zip(pseudo["key"].tolist(), member.tolist(), strict=True))
    best: tuple[str, float, np.ndarray, np.ndarray] | None = None
    for how in ("mean", "max", "sum"):
        keys, unit_scores = aggregate(pseudo["score"], pseudo["key"], how)
        unit_member = np.array([key_member[k] for k in keys.tolist()])
        value = auc(unit_member, unit_scores)
        if best is None or value > best[1]:
            best = (how, value, unit_scores, unit_member)
    assert best is not None
    how, _, unit_scores, unit_member = best
    return {
        "frame_threshold": frame_threshold,
        "aggregation": how,
        "unit_threshold": choose_threshold(unit_member, unit_scores),
        "source": "shadows",
    }


def _default_threshold(name: str, target_scores: np.ndarray) -> float:
    """Threshold used when the shadows are too few to choose one."""
    if name == "loss":
        return float(np.median(target_scores)) if target_scores.size else 0.0
    if name in ("shokri", "rmia"):
        return 0.5
    return 0.0


def _assemble(
    name: str,
    view: MembershipView,
    turns: Sequence[Turn],
    outcomes: Sequence[Mapping[str, Any]],
    params: dict[str, Any],
    seed: int,
) -> AttackResult:
    """Concatenate per-turn outcomes into one :class:`AttackResult`."""
    frame_parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("frame", "score", "member", "unit", "turn")
    }
    unit_parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("turn", "id", "score", "member", "mean", "max", "sum")
    }
    pseudo_parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("turn", "target", "frame", "score", "member")
    }
    for index, (turn, out) in enumerate(zip(turns, outcomes, strict=True)):
        frames = out["frames"]
        units = view.units[frames]
        frame_parts["frame"].append(frames)
        frame_parts["score"].append(out["scores"])
        frame_parts["member"].append(view.keep[turn.target, units])
        frame_parts["unit"].append(units)
        frame_parts["turn"].append(np.full(frames.size, index))
        by_how = {}
        for how in ("mean", "max", "sum"):
            unit_ids, by_how[how] = aggregate(out["scores"], units, how)
            unit_parts[how].append(by_how[how])
        unit_parts["turn"].append(np.full(unit_ids.size, index))
        unit_parts["id"].append(unit_ids)
        unit_parts["score"].append(by_how[out["aggregation"]])
        unit_parts["member"].append(view.keep[turn.target, unit_ids])
        pseudo = out["pseudo"]
        pseudo_parts["turn"].append(np.full(pseudo["frame"].size, index))
        for key in ("target", "frame", "score", "member"):
            pseudo_parts[key].append(pseudo[key])

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False)

    chosen_names = sorted({k for out in outcomes for k in out["chosen"]})
    return AttackResult(
        name=name,
        frame_index=cat(frame_parts["frame"], np.int64),
        frame_score=cat(frame_parts["score"], np.float64),
        member=cat(frame_parts["member"], bool),
        unit=cat(frame_parts["unit"], np.int64),
        turn=cat(frame_parts["turn"], np.int64),
        unit_turn=cat(unit_parts["turn"], np.int64),
        unit_id=cat(unit_parts["id"], np.int64),
        unit_score=cat(unit_parts["score"], np.float64),
        unit_member=cat(unit_parts["member"], bool),
        unit_scores_by_aggregation={
            how: cat(unit_parts[how], np.float64) for how in ("mean", "max", "sum")
        },
        turn_target=np.array([t.target for t in turns], dtype=np.int64),
        frame_threshold=np.array([o["frame_threshold"] for o in outcomes], float),
        unit_threshold=np.array([o["unit_threshold"] for o in outcomes], float),
        aggregation=tuple(o["aggregation"] for o in outcomes),
        decisions_source=tuple(o["source"] for o in outcomes),
        chosen_params={
            k: np.array([o["chosen"].get(k, np.nan) for o in outcomes], float)
            for k in chosen_names
        },
        pseudo_turn=cat(pseudo_parts["turn"], np.int64),
        pseudo_target=cat(pseudo_parts["target"], np.int64),
        pseudo_frame_index=cat(pseudo_parts["frame"], np.int64),
        pseudo_score=cat(pseudo_parts["score"], np.float64),
        pseudo_member=cat(pseudo_parts["member"], bool),
        params=params,
        seed=seed,
    )
