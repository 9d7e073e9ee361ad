"""The membership matrix: which model holds which unit, and the leakage check.

Every model (the target and each shadow) is trained on a subset of *units*
(subjects, sessions or frames). ``keep[m, u]`` is True when model ``m`` held
unit ``u``; ``pool[m, u]`` is True when unit ``u`` is among the units model
``m`` is evaluated on (its members and its non-members). Schemes:

``disjoint``
    The target's pool and the shadows' pool are disjoint sets of units; each
    model holds a random half of its pool (the design of Shokri et al. 2017).
``independent``
    Every model holds an independent random half of all units; row ``m`` is
    drawn from its own stream, so no shadow depends on the target's row.
``rotate``
    Every unit is held by exactly half of the models; each model takes its turn
    as the target with the others as its shadows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from thermia.data.storage import FrameMeta, frame_digests, read_meta
from thermia.io import atomic_path

UNITS = ("subject", "session", "frame")
SCHEMES = ("disjoint", "independent", "rotate")
_STR = h5py.string_dtype("utf-8")


class LeakageError(RuntimeError):
    """The membership matrix breaks a statement its scheme must satisfy."""


@dataclass(frozen=True)
class Split:
    """A membership matrix with everything needed to audit it."""

    unit: str
    scheme: str
    unit_ids: np.ndarray  # (n_units,) str, sorted
    keep: np.ndarray  # (n_models, n_units) bool
    pool: np.ndarray  # (n_models, n_units) bool
    roles: np.ndarray  # (n_models,) str: target, shadow or rotating
    seeds: np.ndarray  # (n_models,) int64, each model's training seed
    seed: int

    @property
    def n_models(self) -> int:
        return self.keep.shape[0]

    def row_hashes(self) -> list[str]:
        return [row_hash(self.unit_ids[k]) for k in self.keep]


def row_hash(member_ids) -> str:
    """Hash a model's set of member unit ids, independent of their order."""
    text = "\n".join(sorted(map(str, member_ids)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def derive_seed(seed: int, *keys: int) -> int:
    """Return a child seed of ``seed`` for ``keys``, e.g. a model's row index."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def frame_units(meta: FrameMeta, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(unit_ids, frame_unit)``: sorted unit ids and each frame's index.

    Session ids are qualified by subject, frame ids by subject, session and
    row, so units never merge across subjects.
    """
    if unit == "subject":
        keys = meta.subject.astype(str)
    elif unit == "session":
        keys = np.char.add(np.char.add(meta.subject.astype(str), "/"), meta.session)
    elif unit == "frame":
        rows = np.char.zfill(np.arange(meta.n_frames).astype(str), 7)
        keys = np.char.add(np.char.add(meta.subject.astype(str), "/"), meta.session)
        keys = np.char.add(np.char.add(keys, "/"), rows)
    else:
        raise ValueError(f"unknown membership unit {unit!r}; expected one of {UNITS}")
    unit_ids, index = np.unique(keys, return_inverse=True)
    return unit_ids, index


def unit_strata(meta: FrameMeta, unit: str, frame_unit: np.ndarray) -> np.ndarray:
    """Return each unit's stratum: its set of labels, and its subject if finer."""
    n_units = frame_unit.max() + 1
    labels = [set() for _ in range(n_units)]
    subjects = [""] * n_units
    for u, label, subject in zip(frame_unit, meta.label, meta.subject, strict=True):
        labels[u].add(int(label))
        subjects[u] = str(subject)
    strata = ["+".join(map(str, sorted(s))) for s in labels]
    if unit != "subject":
        strata = [f"{subj}|{s}" for subj, s in zip(subjects, strata, strict=True)]
    return np.asarray(strata)


def _stratified_half(
    rng: np.random.Generator, strata: np.ndarray, eligible: np.ndarray, share=0.5
) -> np.ndarray:
    """Pick ``share`` of the eligible units of each stratum at random.

    Fractional counts are rounded up or down at random, so that small strata
    balance out across strata and across models.
    """
    chosen = np.zeros(len(strata), dtype=bool)
    for stratum in np.unique(strata[eligible]):
        members = np.flatnonzero(eligible & (strata == stratum))
        exact = share * len(members)
        count = int(np.floor(exact) + (rng.random() < exact - np.floor(exact)))
        chosen[rng.permutation(members)[:count]] = True
    return chosen


def _balanced_rotation(
    rng: np.random.Generator, strata: np.ndarray, n_models: int
) -> np.ndarray:
    """Give every unit to exactly half of the models, balanced within strata.

    Units of a stratum go, in random order, to the models holding the fewest
    units of that stratum so far (then the fewest overall, then at random), so
    each model holds half of every stratum, give or take one unit.
    """
    half = n_models // 2
    keep = np.zeros((n_models, len(strata)), dtype=bool)
    total = np.zeros(n_models)
    for stratum in np.unique(strata):
        held = np.zeros(n_models)
        for u in rng.permutation(np.flatnonzero(strata == stratum)):
            chosen = np.lexsort((rng.random(n_models), total, held))[:half]
            keep[chosen, u] = True
            held[chosen] += 1
            total[chosen] += 1
    return keep


def make_split(
    unit_ids: np.ndarray,
    strata: np.ndarray,
    *,
    unit: str,
    scheme: str,
    n_models: int,
    seed: int,
    target_fraction: float = 0.5,
    unit_fraction: float = 1.0,
) -> Split:
    """Draw the membership matrix for ``scheme`` from ``seed`` alone.

    ``unit_fraction`` < 1 first keeps that share of the units (stratified) and
    leaves the others out of every model's pool: a smaller study of the same
    population. Row ``m`` of ``disjoint`` and ``independent`` depends only on
    ``seed`` and ``m``, so the first rows of a larger split are a smaller one.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown split scheme {scheme!r}; expected one of {SCHEMES}")
    if n_models < 2:
        raise ValueError("n_models must be at least 2 (a target and a shadow)")
    if not 0 < unit_fraction <= 1:
        raise ValueError(f"unit_fraction must be in (0, 1], got {unit_fraction}")
    n_units = len(unit_ids)
    used = np.ones(n_units, dtype=bool)
    if unit_fraction < 1:
        rng = np.random.default_rng(derive_seed(seed, 3))
        used = _stratified_half(rng, strata, used, unit_fraction)
    keep = np.zeros((n_models, n_units), dtype=bool)
    pool = np.tile(used, (n_models, 1))
    if scheme == "disjoint":
        rng = np.random.default_rng(derive_seed(seed, 0))
        target_pool = _stratified_half(rng, strata, used, target_fraction)
        pool[0] = target_pool
        pool[1:] = used & ~target_pool
    if scheme == "rotate":
        rng = np.random.default_rng(derive_seed(seed, 0))
        keep[:, used] = _balanced_rotation(rng, strata[used], n_models)
    else:
        for m in range(n_models):
            rng = np.random.default_rng(derive_seed(seed, 1, m))
            keep[m] = _stratified_half(rng, strata, pool[m])
    roles = (
        ["rotating"] * n_models
        if scheme == "rotate"
        else ["target"] + ["shadow"] * (n_models - 1)
    )
    return Split(
        unit=unit,
        scheme=scheme,
        unit_ids=np.asarray(unit_ids, dtype=str),
        keep=keep,
        pool=pool,
        roles=np.asarray(roles),
        seeds=np.array([derive_seed(seed, 2, m) for m in range(n_models)]),
        seed=seed,
    )


def split_from_meta(meta: FrameMeta, *, unit: str, scheme: str, **options) -> Split:
    """Draw the membership matrix of the frames described by ``meta``.

    ``options`` are the keyword arguments of :func:`make_split` (``n_models``,
    ``seed``, ``target_fraction``, ``unit_fraction``).
    """
    unit_ids, index = frame_units(meta, unit)
    strata = unit_strata(meta, unit, index)
    return make_split(unit_ids, strata, unit=unit, scheme=scheme, **options)


def split_from_frames(frames_path: str | Path, **options) -> Split:
    """Read a frames file and draw its membership matrix."""
    return split_from_meta(read_meta(frames_path), **options)


def write_split(path: str | Path, split: Split) -> None:
    """Write the membership matrix, unit ids, roles, seeds and row hashes."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["keep"] = split.keep
        f["pool"] = split.pool
        f.create_dataset("unit_ids", data=split.unit_ids.astype(object), dtype=_STR)
        f.create_dataset("roles", data=split.roles.astype(object), dtype=_STR)
        f["seeds"] = split.seeds
        f.create_dataset("row_hash", data=split.row_hashes(), dtype=_STR)
        f.attrs.update(unit=split.unit, scheme=split.scheme, seed=split.seed)


def read_split(path: str | Path) -> Split:
    with h5py.File(path, "r") as f:
        return Split(
            unit=str(f.attrs["unit"]),
            scheme=str(f.attrs["scheme"]),
            unit_ids=f["unit_ids"].asstr()[:],
            keep=f["keep"][:],
            pool=f["pool"][:],
            roles=f["roles"].asstr()[:],
            seeds=f["seeds"][:],
            seed=int(f.attrs["seed"]),
        )


def read_row_hashes(path: str | Path) -> list[str]:
    with h5py.File(path, "r") as f:
        return list(f["row_hash"].asstr()[:])


def check_leakage(frames_path: str | Path, split_path: str | Path) -> dict:
    """Check the membership matrix against the frames it was drawn from.

    The units are recomputed from the frames file, not read back from the
    split under test. Raises :class:`LeakageError` naming every broken
    statement; returns a summary of what was checked.
    """
    split = read_split(split_path)
    meta = read_meta(frames_path)
    unit_ids, index = frame_units(meta, split.unit)
    problems: list[str] = []
    if not np.array_equal(unit_ids, split.unit_ids):
        raise LeakageError(
            f"{split_path}: its {len(split.unit_ids)} {split.unit} ids differ from the "
            f"{len(unit_ids)} in {frames_path}; the split is stale"
        )
    for m, (stored, actual) in enumerate(
        zip(read_row_hashes(split_path), split.row_hashes(), strict=True)
    ):
        if stored != actual:
            problems.append(f"model {m}: row hash {stored} does not match its members")
    problems += _scheme_problems(split)
    problems += _class_problems(split, meta.label, index, len(meta.label_names))
    duplicates = _shared_frames(frames_path, index, unit_ids)
    problems += duplicates
    if problems:
        raise LeakageError(f"{split_path}: " + "; ".join(problems[:20]))
    return {
        "unit": split.unit,
        "scheme": split.scheme,
        "n_units": len(unit_ids),
        "n_models": split.n_models,
        "row_hash": split.row_hashes(),
        "checks": [
            "unit ids recomputed from frames",
            "row hashes",
            f"{split.scheme} scheme statements",
            "every model holds every class",
            "no frame content shared between units",
        ],
    }


def _scheme_problems(split: Split) -> list[str]:
    problems = []
    outside = split.keep & ~split.pool
    for m in np.flatnonzero(outside.any(axis=1)):
        problems.append(f"model {m} holds {outside[m].sum()} unit(s) outside its pool")
    if split.scheme == "disjoint":
        target_pool = split.pool[0]
        for s in range(1, split.n_models):
            shared = split.keep[s] & target_pool
            if shared.any():
                ids = ", ".join(split.unit_ids[shared][:3])
                problems.append(
                    f"shadow {s} holds {shared.sum()} unit(s) of the target's pool "
                    f"({ids})"
                )
            if (split.pool[s] & target_pool).any():
                problems.append(f"shadow {s}'s pool overlaps the target's pool")
    if split.scheme == "rotate":
        holders = split.keep.sum(axis=0)
        uneven = (holders != split.n_models // 2) & split.pool.any(axis=0)
        if uneven.any():
            problems.append(
                f"{uneven.sum()} unit(s) not held by exactly half of the models"
            )
    for m in range(split.n_models):
        if not (split.pool[m] & ~split.keep[m]).any():
            problems.append(f"model {m} has no non-member units to be evaluated on")
    return problems


def _class_problems(split, labels, index, n_classes) -> list[str]:
    problems = []
    for m in range(split.n_models):
        held = split.keep[m][index]
        present = np.unique(labels[held])
        if len(present) < n_classes:
            problems.append(f"model {m} holds frames of {len(present)} class(es) only")
    return problems


def _shared_frames(frames_path, index, unit_ids) -> list[str]:
    digests = frame_digests(frames_path)
    order = np.argsort(digests, kind="stable")
    same = digests[order][1:] == digests[order][:-1]
    problems = []
    for i in np.flatnonzero(same):
        a, b = index[order[i]], index[order[i + 1]]
        if a != b:
            problems.append(
                f"frames {order[i]} and {order[i + 1]} are identical but belong to "
                f"different units ({unit_ids[a]}, {unit_ids[b]})"
            )
    return problems


def write_leakage_report(path: str | Path, summary: dict) -> None:
    """Write what :func:`check_leakage` verified, as JSON."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
