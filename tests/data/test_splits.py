"""Tests of the membership matrix (split schemes) and of the leakage check."""

from __future__ import annotations

import itertools

import h5py
import numpy as np
import pytest

from thermia.attacks.core import Turn, scheme_turns
from thermia.data.splits import (
    SCHEMES,
    LeakageError,
    Split,
    check_leakage,
    frame_units,
    read_row_hashes,
    read_split,
    row_hash,
    split_from_frames,
    split_from_meta,
    unit_strata,
    write_split,
)
from thermia.data.storage import FrameMeta


def build_meta(n_subjects: int = 30, sessions_per_label: int = 2, frames: int = 2):
    """Synthetic metadata whose subjects differ in which labels they have.

    Subject ``i`` has sessions of label 0 and 1 when ``i % 3 == 0``, of label
    0 only when ``i % 3 == 1`` and of label 1 only when ``i % 3 == 2``. Every
    subject has a session named ``s0``, so session ids repeat across subjects.
    """
    subject, session, label, frame = [], [], [], []
    for i in range(n_subjects):
        labels = [(0, 1), (0,), (1,)][i % 3]
        k = 0
        for lab in labels:
            for _ in range(sessions_per_label):
                for f in range(frames):
                    subject.append(f"p{i:03d}")
                    session.append(f"s{k}")
                    label.append(lab)
                    frame.append(f)
                k += 1
    return FrameMeta(
        subject=np.array(subject, dtype=object),
        session=np.array(session, dtype=object),
        label=np.array(label, dtype=np.int64),
        frame=np.array(frame, dtype=np.int64),
        label_names=("baseline", "stress"),
        attrs={},
    )


def split_of(meta, unit, scheme, n_models=4, seed=0, **kwargs) -> Split:
    return split_from_meta(
        meta, unit=unit, scheme=scheme, n_models=n_models, seed=seed, **kwargs
    )


def strata_of(meta, unit) -> np.ndarray:
    """Each unit's stratum, written out: its label set, and its subject if finer."""
    unit_ids, index = frame_units(meta, unit)
    labels = {u: set() for u in range(len(unit_ids))}
    subjects = {}
    for row, u in enumerate(index):
        labels[u].add(int(meta.label[row]))
        subjects[u] = str(meta.subject[row])
    out = []
    for u in range(len(unit_ids)):
        key = tuple(sorted(labels[u]))
        out.append(key if unit == "subject" else (subjects[u], key))
    return np.array([repr(k) for k in out])


def share_held(scheme: str, n_models: int) -> float:
    return (n_models // 2) / n_models if scheme == "rotate" else 0.5


META = build_meta()
CASES = list(itertools.product(SCHEMES, ("subject", "session", "frame")))


# ---------------------------------------------------------------- units


def test_frame_units_by_subject():
    unit_ids, index = frame_units(META, "subject")
    assert list(unit_ids) == sorted(set(META.subject))
    np.testing.assert_array_equal(unit_ids[index], META.subject.astype(str))


def test_session_units_are_qualified_by_subject():
    unit_ids, index = frame_units(META, "session")
    pairs = sorted(set(zip(META.subject, META.session, strict=True)))
    assert len(unit_ids) == len(pairs)
    for row in range(META.n_frames):
        same = (META.subject == META.subject[row]) & (META.session == META.session[row])
        assert set(np.flatnonzero(index == index[row])) == set(np.flatnonzero(same))


def test_two_subjects_with_session_s1_are_two_units():
    meta = FrameMeta(
        subject=np.array(["a", "a", "b", "b"], dtype=object),
        session=np.array(["s1", "s1", "s1", "s1"], dtype=object),
        label=np.array([0, 0, 1, 1]),
        frame=np.array([0, 1, 0, 1]),
        label_names=("x", "y"),
        attrs={},
    )
    unit_ids, index = frame_units(meta, "session")
    assert len(unit_ids) == 2
    assert list(index) == [0, 0, 1, 1]


def test_frame_units_are_one_per_frame():
    unit_ids, index = frame_units(META, "frame")
    assert len(unit_ids) == META.n_frames
    assert len(set(index)) == META.n_frames
    assert all(unit_ids[index[r]].startswith(f"{META.subject[r]}/") for r in range(9))


def test_unknown_unit_is_an_error():
    with pytest.raises(ValueError, match="patient"):
        frame_units(META, "patient")


def test_strata_match_a_hand_written_reference():
    for unit in ("subject", "session", "frame"):
        _, index = frame_units(META, unit)
        got = unit_strata(META, unit, index)
        want = strata_of(META, unit)
        # same partition of units, whatever the labels of the strata
        pairs = set(zip(got, want, strict=True))
        assert len(pairs) == len(set(got)) == len(set(want))


# -------------------------------------------------------------- schemes


@pytest.mark.parametrize(("scheme", "unit"), CASES)
def test_shapes_roles_and_seeds(scheme, unit):
    split = split_of(META, unit, scheme, n_models=5)
    n_units = len(frame_units(META, unit)[0])
    assert split.keep.shape == split.pool.shape == (5, n_units)
    assert split.keep.dtype == split.pool.dtype == bool
    assert not (split.keep & ~split.pool).any()
    assert len(set(split.seeds.tolist())) == 5
    if scheme == "rotate":
        assert list(split.roles) == ["rotating"] * 5
        assert scheme_turns(scheme, 5)[2] == Turn(2, (0, 1, 3, 4))
    else:
        assert list(split.roles) == ["target"] + ["shadow"] * 4
        assert scheme_turns(scheme, 5) == [Turn(0, (1, 2, 3, 4))]


@pytest.mark.parametrize(("scheme", "unit"), CASES)
def test_each_model_holds_half_of_its_pool_in_every_stratum(scheme, unit):
    n_models = 4
    split = split_of(META, unit, scheme, n_models=n_models, seed=3)
    strata = strata_of(META, unit)
    share = share_held(scheme, n_models)
    for m in range(n_models):
        for stratum in np.unique(strata[split.pool[m]]):
            in_stratum = split.pool[m] & (strata == stratum)
            held = int(split.keep[m][in_stratum].sum())
            expected = share * in_stratum.sum()
            assert abs(held - expected) <= 1, (
                f"model {m} holds {held} of {in_stratum.sum()} units of "
                f"stratum {stratum}"
            )


@pytest.mark.parametrize("unit", ["subject", "session", "frame"])
def test_disjoint_pools(unit):
    split = split_of(META, unit, "disjoint", n_models=5, seed=1)
    target_pool = split.pool[0]
    assert target_pool.any() and (~target_pool).any()
    for s in range(1, 5):
        np.testing.assert_array_equal(split.pool[s], ~target_pool)
        assert not (split.keep[s] & target_pool).any()
    assert not (split.keep[0] & ~target_pool).any()


def test_disjoint_target_fraction():
    for fraction in (0.25, 0.75):
        split = split_of(META, "frame", "disjoint", target_fraction=fraction)
        assert abs(split.pool[0].mean() - fraction) < 0.05


@pytest.mark.parametrize("unit", ["subject", "session"])
def test_independent_rows(unit):
    five = split_of(META, unit, "independent", n_models=5, seed=2)
    seven = split_of(META, unit, "independent", n_models=7, seed=2)
    assert five.pool.all()
    np.testing.assert_array_equal(seven.keep[:5], five.keep)
    np.testing.assert_array_equal(seven.seeds[:5], five.seeds)
    rows = {tuple(r) for r in seven.keep}
    assert len(rows) == 7


@pytest.mark.parametrize("n_models", [4, 5, 6])
def test_rotate_holds_every_unit_in_half_of_the_models(n_models):
    split = split_of(META, "session", "rotate", n_models=n_models, seed=4)
    np.testing.assert_array_equal(split.keep.sum(axis=0), n_models // 2)
    assert split.pool.all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_session_unit_is_stratified_by_label_and_subject(scheme):
    n_models = 4
    split = split_of(META, "session", scheme, n_models=n_models, seed=5)
    unit_ids, index = frame_units(META, "session")
    unit_label = np.zeros(len(unit_ids), dtype=int)
    unit_label[index] = META.label
    unit_subject = np.empty(len(unit_ids), dtype=object)
    unit_subject[index] = META.subject
    share = share_held(scheme, n_models)
    for m in range(n_models):
        assert set(unit_label[split.keep[m]]) == {0, 1}
        for subject in np.unique(unit_subject):
            mine = split.pool[m] & (unit_subject == subject)
            if mine.sum() < 2:
                continue
            held = int(split.keep[m][mine].sum())
            assert abs(held - share * mine.sum()) <= 1, (
                f"model {m} holds {held} of the {mine.sum()} sessions of {subject}"
            )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_seed_decides_the_split(scheme):
    a = split_of(META, "session", scheme, seed=11)
    b = split_of(META, "session", scheme, seed=11)
    c = split_of(META, "session", scheme, seed=12)
    np.testing.assert_array_equal(a.keep, b.keep)
    np.testing.assert_array_equal(a.pool, b.pool)
    np.testing.assert_array_equal(a.seeds, b.seeds)
    assert not np.array_equal(a.keep, c.keep)
    assert not np.array_equal(a.seeds, c.seeds)


def test_bad_arguments():
    with pytest.raises(ValueError, match="scheme"):
        split_of(META, "subject", "shuffled")
    with pytest.raises(ValueError, match="n_models"):
        split_of(META, "subject", "independent", n_models=1)


# ------------------------------------------------------------ row hashes


def test_row_hash_is_order_independent_and_set_sensitive():
    ids = [f"p{i:03d}" for i in range(10)]
    rng = np.random.default_rng(0)
    assert row_hash(ids) == row_hash(rng.permutation(ids))
    assert row_hash(ids) == row_hash(np.array(ids, dtype=object))
    assert row_hash(ids) != row_hash(ids[:-1])
    assert row_hash(ids[:5]) != row_hash(ids[5:])


def test_row_hashes_survive_the_file(tmp_path):
    split = split_of(META, "session", "independent", n_models=3, seed=6)
    path = tmp_path / "keep.h5"
    write_split(path, split)
    again = read_split(path)
    np.testing.assert_array_equal(again.keep, split.keep)
    np.testing.assert_array_equal(again.pool, split.pool)
    np.testing.assert_array_equal(again.unit_ids, split.unit_ids)
    np.testing.assert_array_equal(again.seeds, split.seeds)
    assert (again.unit, again.scheme, again.seed) == ("session", "independent", 6)
    stored = read_row_hashes(path)
    assert stored == split.row_hashes() == again.row_hashes()
    assert stored == [row_hash(split.unit_ids[k]) for k in split.keep]
    assert len(set(stored)) == 3


# --------------------------------------------------------------- leakage


def leakage_frames(n_subjects: int = 8, seed: int = 0):
    """Columns of a small frames file: each subject a baseline and a stress session."""
    rng = np.random.default_rng(seed)
    subject, session, label = [], [], []
    for i in range(n_subjects):
        for lab, name in ((0, "base"), (1, "stress")):
            for _ in range(2):
                subject.append(f"p{i:02d}")
                session.append(name)
                label.append(lab)
    frames = rng.integers(0, 2**12, size=(len(label), 5, 6)).astype(np.uint16)
    return {"frames": frames, "subject": subject, "session": session, "label": label}


def drawn(frames_path, tmp_path, scheme="disjoint", unit="subject", n_models=4):
    split = split_from_frames(
        frames_path,
        unit=unit,
        scheme=scheme,
        n_models=n_models,
        seed=0,
        target_fraction=0.5,
    )
    path = tmp_path / f"keep_{scheme}_{unit}.h5"
    write_split(path, split)
    return path, split


def rewrite_keep(path, keep: np.ndarray, fix_hashes: bool) -> None:
    with h5py.File(path, "r+") as f:
        f["keep"][...] = keep
        if fix_hashes:
            unit_ids = f["unit_ids"].asstr()[:]
            for m, row in enumerate(keep):
                f["row_hash"][m] = row_hash(unit_ids[row])


@pytest.mark.parametrize(("scheme", "unit"), CASES)
def test_a_correct_split_passes(frames_file, tmp_path, scheme, unit):
    frames = frames_file(**leakage_frames())
    path, split = drawn(frames, tmp_path, scheme, unit)
    summary = check_leakage(frames, path)
    assert summary["scheme"] == scheme
    assert summary["n_units"] == split.keep.shape[1]
    assert summary["row_hash"] == read_row_hashes(path)


def test_shadow_holding_a_target_unit_is_caught(frames_file, tmp_path):
    frames = frames_file(**leakage_frames())
    path, split = drawn(frames, tmp_path)
    keep = split.keep.copy()
    leaked = np.flatnonzero(split.pool[0])[0]
    keep[2, leaked] = True
    rewrite_keep(path, keep, fix_hashes=True)
    with pytest.raises(LeakageError) as info:
        check_leakage(frames, path)
    message = str(info.value)
    assert "shadow 2" in message
    assert "target's pool" in message
    assert split.unit_ids[leaked] in message
    assert "row hash" not in message


def test_tampered_row_without_its_hash_is_caught(frames_file, tmp_path):
    frames = frames_file(**leakage_frames())
    path, split = drawn(frames, tmp_path)
    keep = split.keep.copy()
    held = np.flatnonzero(keep[1])[0]
    free = np.flatnonzero(split.pool[1] & ~keep[1])[0]
    keep[1, held], keep[1, free] = False, True
    rewrite_keep(path, keep, fix_hashes=False)
    with pytest.raises(LeakageError) as info:
        check_leakage(frames, path)
    message = str(info.value)
    assert "model 1" in message
    assert "row hash" in message
    assert "target's pool" not in message


def test_frame_shared_between_subjects_is_caught(frames_file, tmp_path):
    columns = leakage_frames()
    columns["frames"][9] = columns["frames"][0]  # p00's pixels inside p02
    frames = frames_file(**columns)
    path, _ = drawn(frames, tmp_path)
    with pytest.raises(LeakageError) as info:
        check_leakage(frames, path)
    message = str(info.value)
    assert "identical" in message
    assert "p00" in message and "p02" in message


def test_frame_repeated_within_one_unit_is_allowed(frames_file, tmp_path):
    columns = leakage_frames()
    columns["frames"][1] = columns["frames"][0]  # both frames of p00 / base
    frames = frames_file(**columns)
    path, _ = drawn(frames, tmp_path)
    check_leakage(frames, path)


def test_split_of_another_frames_file_is_stale(frames_file, tmp_path):
    frames = frames_file(**leakage_frames(n_subjects=8))
    other = frames_file(**leakage_frames(n_subjects=9, seed=1))
    path, _ = drawn(other, tmp_path)
    with pytest.raises(LeakageError, match="stale"):
        check_leakage(frames, path)


def test_rotate_unit_held_by_too_many_models_is_caught(frames_file, tmp_path):
    frames = frames_file(**leakage_frames())
    path, split = drawn(frames, tmp_path, scheme="rotate", n_models=4)
    keep = split.keep.copy()
    keep[:, 3] = True
    rewrite_keep(path, keep, fix_hashes=True)
    with pytest.raises(LeakageError, match="exactly half"):
        check_leakage(frames, path)


def test_model_holding_one_class_only_is_caught(frames_file, tmp_path):
    frames = frames_file(**leakage_frames())
    path, split = drawn(frames, tmp_path, unit="session", scheme="independent")
    unit_ids = split.unit_ids
    keep = split.keep.copy()
    keep[1] = np.char.endswith(unit_ids.astype(str), "/base")
    rewrite_keep(path, keep, fix_hashes=True)
    with pytest.raises(LeakageError, match=r"model 1 holds frames of 1 class"):
        check_leakage(frames, path)
