"""Tests of the frames file: round trip, content hash, atomic writes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys

import h5py
import numpy as np
import pytest

from thermia.data.cameras import MissingExtraError
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


def write(path, columns: dict, sizes=None, n_frames=None, blocks=None, **options):
    """Write ``columns`` in blocks of ``sizes`` (or the given ``blocks``)."""
    n = len(columns["frames"])
    return write_frames(
        path,
        blocks_of(columns, sizes or [n]) if blocks is None else blocks,
        n_frames=n if n_frames is None else n_frames,
        shape=columns["frames"].shape[1:],
        dtype=columns["frames"].dtype,
        label_names=LABEL_NAMES,
        source="test",
        radiometric_scale="counts",
        **options,
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


def test_content_hash_matches_a_reference_computation(tmp_path):
    """The hash is SHA-256 of shape and dtype, each frame's SHA-256, the metadata."""
    columns = sample()
    reference = hashlib.sha256(json.dumps([[6, 8], "uint16"]).encode())
    for frame in columns["frames"]:
        reference.update(hashlib.sha256(frame.tobytes()).digest())
    meta = hashlib.sha256()
    for i in range(len(columns["frames"])):
        row = [str(columns[k][i]) for k in ("subject", "session")]
        row += [int(columns[k][i]) for k in ("label", "frame")]
        meta.update(json.dumps(row).encode())
    reference.update(meta.digest())
    assert write(tmp_path / "a.h5", columns, sizes=[4, 8]) == reference.hexdigest()


def test_digests_given_by_the_producer(tmp_path):
    columns = sample()
    blocks = blocks_of(columns, [5, 7])
    given = [
        FrameBlock(**{**vars(b), "digests": [_sha(f) for f in b.frames]})
        for b in blocks
    ]
    assert write(tmp_path / "a.h5", columns, blocks=given) == write(
        tmp_path / "b.h5", columns
    )
    short = [FrameBlock(**{**vars(blocks[0]), "digests": [b"x"] * 4})]
    with pytest.raises(ValueError, match=r"c\.h5: a block's digests are not one per"):
        write(tmp_path / "c.h5", columns, blocks=short, n_frames=5)
    assert not (tmp_path / "c.h5").exists()


def _sha(frame: np.ndarray) -> bytes:
    return hashlib.sha256(frame.tobytes()).digest()


@pytest.mark.parametrize(
    ("compression", "chunks", "recorded"),
    [(None, None, "none"), ("none", None, "none"), ("lzf", (1, 6, 8), "lzf")],
)
def test_layout_follows_compression(tmp_path, compression, chunks, recorded):
    """Uncompressed frames are contiguous; compressed ones one chunk per frame."""
    columns = sample()
    path = tmp_path / "frames.h5"
    plain = write(tmp_path / "plain.h5", columns)
    digest = write(path, columns, compression=compression)
    assert digest == plain  # the content hash ignores the storage
    with h5py.File(path) as f:
        assert f["frames"].chunks == chunks
        assert f.attrs["compression"] == recorded
        np.testing.assert_array_equal(f["frames"][:], columns["frames"])


def write_compressed(path, compression: str) -> str:
    return write(path, sample(), compression=compression)


def test_blosc_lz4_round_trip(tmp_path):
    pytest.importorskip("hdf5plugin", reason="the blosc extra is not installed")
    path = tmp_path / "frames.h5"
    assert write_compressed(path, "blosc-lz4") == write(tmp_path / "p.h5", sample())
    with h5py.File(path) as f:
        assert f.attrs["compression"] == "blosc-lz4"
        assert f["frames"].chunks == (1, 6, 8)
        assert str(32001) in f["frames"]._filters  # the Blosc filter's HDF5 id
    frames = np.concatenate([b for _, b in iter_frames(path)])
    np.testing.assert_array_equal(frames, sample()["frames"])


def test_blosc_lz4_without_hdf5plugin(tmp_path, monkeypatch):
    written = tmp_path / "written.h5"
    if importlib.util.find_spec("hdf5plugin") is not None:
        write_compressed(written, "blosc-lz4")
    monkeypatch.setitem(sys.modules, "hdf5plugin", None)  # import now fails
    path = tmp_path / "out" / "frames.h5"
    path.parent.mkdir()
    with pytest.raises(MissingExtraError, match=r"frames.h5: compression blosc-lz4"):
        write_compressed(path, "blosc-lz4")
    assert list(path.parent.iterdir()) == []
    if written.exists():
        with pytest.raises(MissingExtraError, match=r"written.h5: .*pip install"):
            next(iter_frames(written))


def test_unknown_compression_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match=r"frames.h5: unknown compression 'zstd'"):
        write_compressed(tmp_path / "frames.h5", "zstd")
    assert list(tmp_path.iterdir()) == []
