"""The frames file: every frame once, at native resolution, with its metadata.

Layout of ``frames.h5``::

    frames   (n_frames, height, width)  native dtype; contiguous, or one chunk
                                        per frame when compressed
    subject  (n_frames,) str            session (n_frames,) str
    label    (n_frames,) int64          frame   (n_frames,) int64
    metadata/<column>  (n_frames,) str  optional extra per-frame columns
    attrs:   source, radiometric_scale, label_names (JSON), content_hash,
             thermia_version, compression
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from thermia import __version__
from thermia.data.cameras import optional_module
from thermia.io import atomic_path

_STR = h5py.string_dtype("utf-8")

#: Names of the frames' HDF5 compressions; measured by benchmarks/ingest.py.
COMPRESSIONS = ("none", "gzip", "lzf", "blosc-lz4")


@dataclass(frozen=True)
class FrameBlock:
    """A run of frames with their metadata, as written by one ingest step."""

    frames: np.ndarray  # (n, height, width)
    subject: np.ndarray  # (n,) str
    session: np.ndarray  # (n,) str
    label: np.ndarray  # (n,) int
    frame: np.ndarray  # (n,) int
    #: (n,) SHA-256 digests (bytes) of each frame's pixels, when the producer
    #: has them already; :func:`write_frames` computes them otherwise.
    digests: list[bytes] | None = None


@dataclass(frozen=True)
class FrameMeta:
    """Per-frame metadata of a frames file (everything but the pixels)."""

    subject: np.ndarray
    session: np.ndarray
    label: np.ndarray
    frame: np.ndarray
    label_names: tuple[str, ...]
    attrs: dict

    @property
    def n_frames(self) -> int:
        return len(self.label)


def write_frames(
    path: str | Path,
    blocks: Iterable[FrameBlock],
    *,
    n_frames: int,
    shape: tuple[int, int],
    dtype: np.dtype,
    label_names: tuple[str, ...],
    source: str,
    radiometric_scale: str,
    compression: str | None = None,
    compression_opts: int | None = None,
    metadata: Mapping[str, Iterable[str]] | None = None,
) -> str:
    """Stream ``blocks`` into a new frames file; return its content hash.

    The file appears at ``path`` only once every frame is written, so an
    interrupted ingest leaves nothing behind. ``compression`` names the
    frames' HDF5 filter (one of :data:`COMPRESSIONS`; ``None`` is ``"none"``),
    recorded in the ``compression`` attribute; ``"blosc-lz4"`` needs the
    optional package ``hdf5plugin``, to write and to read. ``metadata`` holds
    extra per-frame text columns, each of length ``n_frames``, written under
    ``metadata/``; they are not part of the content hash.

    The content hash is the SHA-256 of the shape and dtype, each frame's
    SHA-256 (see :func:`frame_digests`) in order, and the per-frame metadata,
    so a block's ``digests`` spare a second pass over the pixels. Without
    compression the frames are stored contiguously (the fastest to write and
    to read); with it, one chunk per frame.
    """
    meta_digest = hashlib.sha256()
    digest = hashlib.sha256()
    digest.update(json.dumps([list(shape), str(np.dtype(dtype))]).encode())
    compression = None if compression == "none" else compression
    layout = _filter(compression, compression_opts, path)
    if layout:
        layout["chunks"] = (1, *shape)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        frames = f.create_dataset(
            "frames", shape=(n_frames, *shape), dtype=dtype, **layout
        )
        for name, values in (metadata or {}).items():
            column = np.asarray(list(values), dtype=object)
            if len(column) != n_frames:
                raise ValueError(f"{path}: metadata {name!r} is not one per frame")
            f.create_dataset(f"metadata/{name}", data=column, dtype=_STR)
        columns = {
            "subject": f.create_dataset("subject", (n_frames,), dtype=_STR),
            "session": f.create_dataset("session", (n_frames,), dtype=_STR),
            "label": f.create_dataset("label", (n_frames,), dtype=np.int64),
            "frame": f.create_dataset("frame", (n_frames,), dtype=np.int64),
        }
        start = 0
        for block in blocks:
            stop = start + len(block.frames)
            if stop > n_frames:
                raise ValueError(f"{path}: more frames than the {n_frames} announced")
            frames[start:stop] = block.frames
            for name, dataset in columns.items():
                dataset[start:stop] = getattr(block, name)
            digests = block.digests
            if digests is None:
                pixels = np.ascontiguousarray(block.frames, dtype=dtype)
                digests = [frame_digest(frame) for frame in pixels]
            if len(digests) != len(block.frames):
                raise ValueError(f"{path}: a block's digests are not one per frame")
            for one in digests:
                digest.update(one)
            for row in zip(
                map(str, block.subject),
                map(str, block.session),
                block.label.tolist(),
                block.frame.tolist(),
                strict=True,
            ):
                meta_digest.update(json.dumps(row).encode())
            start = stop
        if start != n_frames:
            raise ValueError(f"{path}: {start} frames written, {n_frames} announced")
        digest.update(meta_digest.digest())
        content_hash = digest.hexdigest()
        f.attrs.update(
            source=source,
            radiometric_scale=radiometric_scale,
            label_names=json.dumps(list(label_names)),
            content_hash=content_hash,
            thermia_version=__version__,
            compression=_compression_name(compression, compression_opts),
        )
    return content_hash


def _filter(compression: str | None, opts: int | None, path: str | Path) -> dict:
    """Keyword arguments of ``create_dataset`` for a named compression."""
    if compression is None:
        return {}
    if compression not in COMPRESSIONS:
        raise ValueError(
            f"{path}: unknown compression {compression!r}; expected one of "
            f"{', '.join(COMPRESSIONS)}"
        )
    if compression == "blosc-lz4":
        plugin = _hdf5plugin(path, compression)
        level = 5 if opts is None else opts
        shuffle = plugin.Blosc.SHUFFLE
        return dict(plugin.Blosc(cname="lz4", clevel=level, shuffle=shuffle))
    return {"compression": compression, "compression_opts": opts}


def _hdf5plugin(path: str | Path, compression: str):
    """Import ``hdf5plugin`` (it registers the Blosc filter with HDF5)."""
    return optional_module("hdf5plugin", f"{path}: compression {compression}")


def frame_digest(frame: np.ndarray) -> bytes:
    """SHA-256 of one C-contiguous frame's pixel bytes, as the content hash uses."""
    return hashlib.sha256(frame).digest()


def _compression_name(compression: str | None, opts: int | None) -> str:
    if compression is None:
        return "none"
    return compression if opts is None else f"{compression}:{opts}"


def read_meta(path: str | Path) -> FrameMeta:
    """Read the per-frame metadata of a frames file, without its pixels."""
    with h5py.File(path, "r") as f:
        return FrameMeta(
            subject=f["subject"].asstr()[:],
            session=f["session"].asstr()[:],
            label=f["label"][:],
            frame=f["frame"][:],
            label_names=tuple(json.loads(f.attrs["label_names"])),
            attrs=dict(f.attrs),
        )


def iter_frames(path: str | Path, batch_size: int = 256):
    """Yield ``(start, frames)`` batches of a frames file in order."""
    with h5py.File(path, "r") as f:
        compression = str(f.attrs.get("compression", "none"))
        if compression.startswith("blosc"):
            _hdf5plugin(path, compression)
        dataset = f["frames"]
        for start in range(0, len(dataset), batch_size):
            yield start, dataset[start : start + batch_size]


def frame_digests(path: str | Path) -> np.ndarray:
    """Return the SHA-256 of each frame's pixels, shape ``(n_frames,)``."""
    digests = []
    for _, batch in iter_frames(path):
        digests.extend(frame_digest(f).hex() for f in batch)
    return np.asarray(digests)
