"""Tests of the frames file: round trip, content hash, atomic writes."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from thermia.data.storage import (
    FrameBlock,
    frame_digests,
    iter_frames,
    read_meta,
    write_frames,
)

LABEL_NAMES = ("baseline", "stress")


def sample(seed: int = 0, n: int = 12, shape=(6, 8)) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "frames": rng.integers(0, 2**14, size=(n, *shape)).astype(np.uint16),
        "subject": np.array([f"p{i // 4}" for i in range(n)]),
        "session": np.array([f"s{(i // 2) % 2}" for i in range(n)]),
        "label": (np.arange(n) // 2) % 2,
        "frame": np.arange(n) % 2,
    }


def blocks_of(columns: dict, sizes) -> list[FrameBlock]:
    out, start = [], 0
    for size in sizes:
        part = {k: v[start : start + size] for k, v in columns.items()}
        out.append(FrameBlock(**part))
        start += size
    return out


def write(path, columns: dict, sizes=None, n_frames=None) -> str:
    n = len(columns["frames"])
    return write_frames(
        path,
        blocks_of(columns, sizes or [n]),
        n_frames=n if n_frames is None else n_frames,
        shape=columns["frames"].shape[1:],
        dtype=columns["frames"].dtype,
        label_names=LABEL_NAMES,
        source="test",
        radiometric_scale="counts",
    )


def test_round_trip(tmp_path):
    columns = sample()
    path = tmp_path / "frames.h5"
    content_hash = write(path, columns, sizes=[5, 0, 7])
    meta = read_meta(path)
    assert meta.n_frames == len(columns["frames"])
    np.testing.assert_array_equal(meta.subject, columns["subject"])
    np.testing.assert_array_equal(meta.session, columns["session"])
    np.testing.assert_array_equal(meta.label, columns["label"])
    np.testing.assert_array_equal(meta.frame, columns["frame"])
    assert meta.label_names == LABEL_NAMES
    assert meta.attrs["source"] == "test"
    assert meta.attrs["radiometric_scale"] == "counts"
    assert meta.attrs["content_hash"] == content_hash
    assert json.loads(meta.attrs["label_names"]) == list(LABEL_NAMES)
    batches = list(iter_frames(path, batch_size=5))
    assert [start for start, _ in batches] == [0, 5, 10]
    frames = np.concatenate([b for _, b in batches])
    assert frames.dtype == columns["frames"].dtype
    np.testing.assert_array_equal(frames, columns["frames"])


def test_content_hash_is_deterministic_and_sees_one_pixel(tmp_path):
    columns = sample()
    first = write(tmp_path / "a.h5", columns, sizes=[3, 9])
    again = write(tmp_path / "b.h5", sample(), sizes=[3, 9])
    assert first == again
    touched = sample()
    touched["frames"][7, 3, 4] += 1
    assert write(tmp_path / "c.h5", touched, sizes=[3, 9]) != first


def test_content_hash_does_not_depend_on_batching(tmp_path):
    """The same frames and metadata, streamed in other blocks, are the same content."""
    whole = write(tmp_path / "a.h5", sample())
    assert write(tmp_path / "b.h5", sample(), sizes=[3, 9]) == whole
    assert write(tmp_path / "c.h5", sample(), sizes=[1] * 12) == whole


def test_content_hash_sees_metadata(tmp_path):
    first = write(tmp_path / "a.h5", sample())
    relabelled = sample()
    relabelled["subject"][0] = "p9"
    assert write(tmp_path / "b.h5", relabelled) != first


def test_fewer_frames_than_announced_leaves_no_file(tmp_path):
    columns = sample()
    path = tmp_path / "frames.h5"
    with pytest.raises(ValueError, match="announced"):
        write(path, columns, n_frames=len(columns["frames"]) + 3)
    assert list(tmp_path.iterdir()) == []


def test_more_frames_than_announced_leaves_no_file(tmp_path):
    columns = sample()
    path = tmp_path / "frames.h5"
    with pytest.raises(ValueError, match="announced"):
        write(path, columns, sizes=[6, 6], n_frames=8)
    assert list(tmp_path.iterdir()) == []


def test_frame_digests_hash_each_frame(tmp_path):
    columns = sample(n=300, shape=(3, 4))
    columns["frames"][5] = columns["frames"][2]
    path = tmp_path / "frames.h5"
    write(path, columns)
    digests = frame_digests(path)
    expected = [hashlib.sha256(f.tobytes()).hexdigest() for f in columns["frames"]]
    assert list(digests) == expected
    assert digests[5] == digests[2]
    assert len(set(digests)) == len(digests) - 1
