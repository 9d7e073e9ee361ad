"""Tests of the embedded synthetic thermal-face generator."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from thermia.data.synthetic import (
    LANDMARK_NAMES,
    SyntheticSpec,
    generate,
    iter_sessions,
    label_names,
    region_temperature,
)

SMALL = {"n_subjects": 3, "frames_per_session": 2, "height": 20, "width": 24}


def window_mean(frame: np.ndarray, row: float, col: float, radius: int) -> float:
    """Mean of the (2r+1)^2 window around the nearest pixel, written out by hand."""
    r, c = round(row), round(col)
    values = []
    for i in range(r - radius, r + radius + 1):
        for j in range(c - radius, c + radius + 1):
            if 0 <= i < frame.shape[0] and 0 <= j < frame.shape[1]:
                values.append(float(frame[i, j]))
    return sum(values) / len(values)


def session_means(blocks, name: str) -> np.ndarray:
    """Per-session mean over frames of the 3x3 window at landmark ``name``."""
    out = []
    for b in blocks:
        k = b.landmark_names.index(name)
        per_frame = [
            window_mean(f, *b.landmarks[t, k], radius=1) for t, f in enumerate(b.frames)
        ]
        out.append(np.mean(per_frame))
    return np.array(out)


def paired(blocks, values: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_subjects, n_classes) table of per-subject means by label."""
    subjects = sorted({b.subject for b in blocks})
    table = np.zeros((len(subjects), n_classes))
    count = np.zeros_like(table)
    for b, v in zip(blocks, values, strict=True):
        i = subjects.index(b.subject)
        table[i, b.label] += v
        count[i, b.label] += 1
    return table / count


@pytest.fixture(scope="module")
def study():
    """150 subjects, one baseline and one stress session each, default physics."""
    return list(iter_sessions(SyntheticSpec(n_subjects=150)))


def test_label_names():
    assert label_names(2) == ("baseline", "stress")
    assert label_names(3) == ("baseline", "mild_stress", "high_stress")
    with pytest.raises(ValueError, match="n_classes"):
        label_names(4)


def test_same_seed_same_data_other_seed_other_data():
    a = generate(SyntheticSpec(**SMALL, seed=3))
    b = generate(SyntheticSpec(**SMALL, seed=3))
    c = generate(SyntheticSpec(**SMALL, seed=4))
    for name in ("frames", "subject", "session", "label", "frame", "time_s"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert np.abs(a.frames - c.frames).mean() > 0.1


def test_global_rng_untouched():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    generate(SyntheticSpec(**SMALL))
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_first_subjects_do_not_depend_on_how_many_follow():
    five = generate(SyntheticSpec(**{**SMALL, "n_subjects": 5}))
    ten = generate(SyntheticSpec(**{**SMALL, "n_subjects": 10}))
    n = len(five.frames)
    np.testing.assert_array_equal(ten.frames[:n], five.frames)
    np.testing.assert_array_equal(ten.session[:n], five.session)
    assert not np.array_equal(ten.frames[n : 2 * n], five.frames)


def test_shapes_dtypes_and_label_counts():
    spec = SyntheticSpec(
        n_subjects=4,
        sessions_per_label=2,
        frames_per_session=3,
        height=20,
        width=24,
        n_classes=3,
        frame_interval_s=1.5,
    )
    data = generate(spec)
    n = 4 * 2 * 3 * 3
    assert data.frames.shape == (n, 20, 24)
    assert data.frames.dtype == np.float32
    assert data.label.dtype == np.int64 and data.frame.dtype == np.int64
    assert data.subject.dtype.kind == "U" and data.session.dtype.kind == "U"
    assert data.subject.shape == data.session.shape == data.label.shape == (n,)
    assert data.label_names == ("baseline", "mild_stress", "high_stress")
    assert data.radiometric_scale == "celsius"
    assert set(np.unique(data.subject)) == {"S0000", "S0001", "S0002", "S0003"}

    sessions = {}
    for subject, session, label, frame, t in zip(
        data.subject, data.session, data.label, data.frame, data.time_s, strict=True
    ):
        name = data.label_names[label]
        assert re.fullmatch(rf"{subject}_{name}_[12]", session)
        sessions.setdefault(session, []).append((subject, label, frame, t))
    assert len(sessions) == 4 * 3 * 2
    for rows in sessions.values():
        assert [r[2] for r in rows] == [0, 1, 2]
        assert [r[3] for r in rows] == pytest.approx([0.0, 1.5, 3.0])
    per_subject_label = Counter((r[0][0], r[0][1]) for r in sessions.values())
    assert set(per_subject_label.values()) == {2}
    assert len(per_subject_label) == 4 * 3


def test_iter_sessions_concatenate_to_generate():
    spec = SyntheticSpec(**SMALL, sessions_per_label=2)
    blocks = list(iter_sessions(spec))
    data = generate(spec)
    np.testing.assert_array_equal(
        np.concatenate([b.frames for b in blocks]), data.frames
    )
    np.testing.assert_array_equal(
        np.repeat([b.session for b in blocks], 2), data.session
    )
    np.testing.assert_array_equal(np.repeat([b.label for b in blocks], 2), data.label)
    np.testing.assert_array_equal(np.concatenate([b.frame for b in blocks]), data.frame)
    b = blocks[0]
    assert b.landmarks.shape == (2, len(LANDMARK_NAMES), 2)
    assert b.landmark_names == LANDMARK_NAMES


def test_rendering_in_small_steps_gives_the_same_frames():
    spec = SyntheticSpec(**{**SMALL, "frames_per_session": 5})
    whole = [b.frames for b in iter_sessions(spec)]
    stepwise = [b.frames for b in iter_sessions(spec, max_pixels=1)]
    for a, b in zip(whole, stepwise, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_region_temperature_matches_hand_written_window():
    block = next(iter_sessions(SyntheticSpec(**SMALL)))
    k = block.landmark_names.index("nose_tip")
    for radius in (0, 1, 2):
        expected = [
            window_mean(f, *block.landmarks[t, k], radius)
            for t, f in enumerate(block.frames)
        ]
        got = region_temperature(block, "nose_tip", radius)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_temperatures_are_physically_plausible(study):
    face_min, face_max = np.inf, -np.inf
    for b in study[:80]:
        names = [
            n for n in b.landmark_names if not (b.glasses and n.startswith("peri"))
        ]
        for t, frame in enumerate(b.frames):
            face = [
                window_mean(frame, *b.landmarks[t, b.landmark_names.index(n)], 0)
                for n in names
            ]
            corners = [frame[:3, :3], frame[:3, -3:], frame[-3:, :3], frame[-3:, -3:]]
            background = max(float(c.mean()) for c in corners)
            assert 18.0 < background < min(face) - 3.0
            face_min, face_max = min(face_min, *face), max(face_max, *face)
    assert face_min >= 30.0
    assert face_max <= 38.0


def test_stress_cools_the_nose_and_warms_the_periorbital_region(study):
    nose = paired(study, session_means(study, "nose_tip"), 2)
    effect = nose[:, 1] - nose[:, 0]
    assert -1.2 <= effect.mean() <= -0.3
    assert (effect < 0).mean() > 0.8

    bare = [b for b in study if not b.glasses]
    peri = (
        session_means(bare, "periorbital_left")
        + session_means(bare, "periorbital_right")
    ) / 2
    peri = paired(bare, peri, 2)
    warming = peri[:, 1] - peri[:, 0]
    standard_error = warming.std(ddof=1) / np.sqrt(len(warming))
    assert warming.mean() > 4 * standard_error
    assert warming.mean() < 0.6


def test_subjects_differ_about_as_much_as_states(study):
    nose = paired(study, session_means(study, "nose_tip"), 2)
    effect = np.mean(nose[:, 1] - nose[:, 0])
    assert nose[:, 0].std(ddof=1) >= 0.8 * abs(effect)


def test_three_classes_give_graded_effects():
    spec = SyntheticSpec(n_subjects=100, frames_per_session=2, n_classes=3)
    blocks = list(iter_sessions(spec))
    nose = paired(blocks, session_means(blocks, "nose_tip"), 3)
    mild = np.mean(nose[:, 1] - nose[:, 0])
    high = np.mean(nose[:, 2] - nose[:, 0])
    assert high < mild < 0
    assert 0.3 < mild / high < 0.7

    reported = paired(blocks, np.array([b.nose_cooling_c for b in blocks]), 3)
    assert np.all(reported[:, 0] == 0)
    assert np.all(reported[:, 1] < reported[:, 2])


def test_breathing_is_faster_under_stress():
    spec = SyntheticSpec(n_subjects=8, frames_per_session=48, height=40, width=52)
    estimated = {0: [], 1: []}
    errors = []
    for b in iter_sessions(spec):
        signal = region_temperature(b, "nostril_left", 0)
        signal = signal + region_temperature(b, "nostril_right", 0)
        signal = signal - signal.mean()
        freqs = np.fft.rfftfreq(1024, d=spec.frame_interval_s)
        peak = freqs[np.argmax(np.abs(np.fft.rfft(signal, 1024)))] * 60.0
        estimated[b.label].append(peak)
        errors.append(abs(peak - b.breathing_rate_bpm))
    assert np.median(errors) < 1.5
    assert 11.0 < np.median(estimated[0]) < 17.0
    assert 17.0 < np.median(estimated[1]) < 25.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_subjects", 0),
        ("sessions_per_label", 0),
        ("frames_per_session", -1),
        ("height", 15),
        ("width", 8),
        ("n_classes", 4),
        ("seed", -1),
        ("n_subjects", 2.5),
        ("noise_sd_c", -0.1),
        ("nose_cooling_c", (1.0, 0.5)),
        ("glasses_fraction", 1.5),
        ("motion_persistence", 1.0),
        ("frame_interval_s", 0.0),
    ],
)
def test_invalid_spec_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SyntheticSpec(**{field: value})
