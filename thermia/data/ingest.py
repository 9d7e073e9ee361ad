"""Ingest: a manifest of frame files, or the synthetic generator, into frames.h5."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from thermia.data import synthetic
from thermia.data.manifest import ManifestError, ManifestRow, read_manifest
from thermia.data.readers import (
    MULTI_FRAME_FORMATS,
    SCALES,
    FrameReadError,
    check_format,
    count_frames,
    decode_frames,
)
from thermia.data.storage import FrameBlock, frame_digest, write_frames
from thermia.io import deferred_signals

log = logging.getLogger(__name__)

BATCH = 64


@dataclass(frozen=True)
class _Item:
    """One frame to ingest: a manifest row, its format and its index in the file."""

    row: ManifestRow
    fmt: str
    index: int | None  # index into a multi-frame file; None for a single frame
    frame: int  # frame number recorded in frames.h5


def ingest_synthetic(path: str | Path, spec: synthetic.SyntheticSpec) -> str:
    """Generate the synthetic study data into ``path``; return its content hash."""
    n_frames = spec.n_subjects * spec.sessions_per_label * spec.n_classes
    n_frames *= spec.frames_per_session

    def blocks() -> Iterator[FrameBlock]:
        for s in synthetic.iter_sessions(spec):
            n = len(s.frames)
            yield FrameBlock(
                frames=s.frames,
                subject=np.full(n, s.subject, dtype=object),
                session=np.full(n, s.session, dtype=object),
                label=np.full(n, s.label, dtype=np.int64),
                frame=s.frame,
            )

    digest = write_frames(
        path,
        blocks(),
        n_frames=n_frames,
        shape=(spec.height, spec.width),
        dtype=np.float32,
        label_names=synthetic.label_names(spec.n_classes),
        source=f"synthetic(seed={spec.seed})",
        radiometric_scale="celsius",
    )
    log.info("wrote %d synthetic frames to %s", n_frames, path)
    return digest


def ingest_manifest(
    path: str | Path,
    manifest: str | Path,
    label_column: str = "label",
    labels: list[str] | None = None,
    *,
    resize_to: tuple[int, int] | None = None,
    scale: str | None = None,
    compression: str | None = None,
    compression_opts: int | None = None,
    threads: int = 2,
) -> str:
    """Decode every frame of ``manifest`` into ``path``; return its content hash.

    Frames are streamed in batches of :data:`BATCH` into a temporary file that
    is renamed to ``path`` only when every frame passed its checks, so a
    failed run leaves neither ``path`` nor a temporary file behind. Each
    failure names the manifest line: a missing or undecodable file; a frame
    whose size differs from the first (unless ``resize_to`` is set); a dtype
    that cannot hold the first frame's values without loss; a radiometric
    scale that differs from the first frame's (or from ``scale``); NaN or
    infinite values; the same pixels (by SHA-256) under two subjects; two rows
    naming the same frame of one file. Identical frames within one subject
    are only logged.

    Parameters
    ----------
    path
        The frames file to write.
    manifest, label_column, labels
        See :func:`thermia.data.manifest.read_manifest`.
    resize_to
        ``(height, width)``: resize every frame (bilinear) to this size;
        ``None`` requires all frames to be the same size.
    scale
        Radiometric scale to ingest in (``raw_counts``, ``celsius``,
        ``intensity8``); ``None`` takes the first frame's.
    compression, compression_opts
        HDF5 compression of the frames, one of
        :data:`thermia.data.storage.COMPRESSIONS` (``None``: none), and its
        level; recorded in the file's ``compression`` attribute.
    threads
        Background threads that decode and check frames, each a batch ahead,
        while the caller's thread hashes and writes; ``0`` does everything in
        the caller's thread.
    """
    if scale is not None and scale not in SCALES:
        raise ValueError(
            f"unknown radiometric scale {scale!r}; expected one of {', '.join(SCALES)}"
        )
    rows, names = read_manifest(manifest, label_column, labels)
    items = _plan(manifest, rows)
    head, head_scale = _read_items(manifest, items[:1], scale)
    scale = scale or head_scale
    if scale == "raw_counts":
        _check_one_sensor(manifest, items)
    shape = tuple(resize_to) if resize_to is not None else head[0].shape
    dtype = head[0].dtype
    class_of = {name: i for i, name in enumerate(names)}
    owner: dict[bytes, _Item] = {}
    repeats = 0

    # One batch buffer per decoding thread, plus the one being written; batch
    # k always takes buffer k % len(buffers) (see _batches for why it is free).
    buffers = [
        np.empty((min(BATCH, len(items)), *shape), dtype=dtype)
        for _ in range(threads + 1)
    ]

    def prepare(start: int, chunk: list[_Item]) -> np.ndarray:
        decoded, _ = _read_items(manifest, chunk, scale)
        frames = buffers[start // BATCH % len(buffers)][: len(chunk)]
        for i, (item, frame) in enumerate(zip(chunk, decoded, strict=True)):
            frames[i] = _fit(manifest, item, frame, shape, dtype, resize_to)
        return frames

    def blocks(stop_if_signalled: Callable[[], None]) -> Iterator[FrameBlock]:
        nonlocal repeats
        for start, chunk, frames in _batches(items, prepare, threads):
            stop_if_signalled()
            digests = [frame_digest(frame) for frame in frames]
            for item, key in zip(chunk, digests, strict=True):
                first = owner.setdefault(key, item)
                if first.row.subject != item.row.subject:
                    raise FrameReadError(
                        f"{_where(manifest, item)}: same pixels as line "
                        f"{first.row.line} ({first.row.path.name}) but subject "
                        f"{item.row.subject!r} instead of {first.row.subject!r}"
                    )
                repeats += first is not item
            log.debug("ingested %d of %d frames", start + len(chunk), len(items))
            yield FrameBlock(
                frames=frames,
                subject=np.array([t.row.subject for t in chunk], dtype=object),
                session=np.array([t.row.session for t in chunk], dtype=object),
                label=np.array([class_of[t.row.label] for t in chunk], dtype=np.int64),
                frame=np.array([t.frame for t in chunk], dtype=np.int64),
                digests=digests,
            )

    with deferred_signals() as stop_if_signalled:
        digest = write_frames(
            path,
            blocks(stop_if_signalled),
            n_frames=len(items),
            shape=shape,
            dtype=dtype,
            label_names=names,
            source=f"manifest:{Path(manifest).name}",
            radiometric_scale=scale,
            compression=compression,
            compression_opts=compression_opts,
            metadata=_metadata(items),
        )
    if repeats:
        log.warning(
            "%s: %d frame(s) repeat another of the same subject", manifest, repeats
        )
    log.info("wrote %d frames from %s to %s", len(items), manifest, path)
    return digest


def _batches(
    items: list[_Item],
    prepare: Callable[[int, list[_Item]], np.ndarray],
    threads: int,
) -> Iterator[tuple[int, list[_Item], np.ndarray]]:
    """Yield ``(start, items, prepare(start, items))`` per batch, in order.

    With ``threads`` > 0, that many background threads prepare (decode and
    check) the next batches while the caller hashes and writes the current
    one; Pillow's decoders, SHA-256 and HDF5's writes of whole batches release
    the GIL, so the work spreads over the cores. Batch k + threads is
    submitted only when the caller asks for batch k, that is once it is done
    with batch k - 1: with ``threads + 1`` buffers taken in turn, ``prepare``
    never overwrites a batch still in use.
    """
    starts = range(0, len(items), BATCH)
    if threads < 1:
        for start in starts:
            chunk = items[start : start + BATCH]
            yield start, chunk, prepare(start, chunk)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        ahead = deque(
            pool.submit(prepare, start, items[start : start + BATCH])
            for start in starts[:threads]
        )
        for k, start in enumerate(starts):
            prepared = ahead.popleft().result()
            if k + threads < len(starts):
                following = starts[k + threads]
                chunk = items[following : following + BATCH]
                ahead.append(pool.submit(prepare, following, chunk))
            yield start, items[start : start + BATCH], prepared


def _plan(manifest: str | Path, rows: list[ManifestRow]) -> list[_Item]:
    """Expand rows into frames: find each file's format, and stacks' lengths."""
    items: list[_Item] = []
    seen: dict[tuple[Path, int | None], int] = {}
    for row in rows:
        where = f"{manifest}, line {row.line}"
        try:
            fmt = check_format(row.path, row.format)
            n = count_frames(row.path, fmt) if fmt in MULTI_FRAME_FORMATS else None
        except FrameReadError as exc:
            raise FrameReadError(f"{where}: {exc}") from exc
        if n == 0:
            raise FrameReadError(f"{where}: {row.path.name} holds no frames")
        if n is None:
            found = [_Item(row, fmt, None, row.frame)]
        elif row.frame >= 0:
            if row.frame >= n:
                raise FrameReadError(
                    f"{where}: frame {row.frame} out of range; "
                    f"{row.path.name} holds {n} frame(s)"
                )
            found = [_Item(row, fmt, row.frame, row.frame)]
        else:
            found = [_Item(row, fmt, i, i) for i in range(n)]
        for item in found:
            key = (row.path, item.index)
            if key in seen and seen[key] != row.line:
                what = row.path.name
                if item.index is not None:
                    what = f"frame {item.index} of {what}"
                raise ManifestError(
                    f"{where}: {what} is already named on line {seen[key]}"
                )
            seen[key] = row.line
        items.extend(found)
    return items


#: Formats whose raw counts are on one camera family's own scale; raw counts
#: from two of these, or from one of these and a generic image or NumPy file,
#: are not comparable.
_SENSORS = {
    "seek_mat": "Seek Thermal (flat-field subtracted)",
    "fff": "FLIR",
    "flir_jpeg": "FLIR",
    "cptv": "Cacophony CPTV",
}


def _check_one_sensor(manifest: str | Path, items: list[_Item]) -> None:
    """Refuse raw counts that come from different camera families.

    Counts are only comparable within one sensor and calibration: a Seek
    frame less its shutter frame sits around zero, a FLIR one in the tens of
    thousands. Images and NumPy files are taken to be one family of their own,
    since their camera cannot be told.
    """
    first = _SENSORS.get(items[0].fmt, "generic")
    for item in items:
        sensor = _SENSORS.get(item.fmt, "generic")
        if sensor != first:
            raise FrameReadError(
                f"{_where(manifest, item)}: raw counts of {item.row.path.name} "
                f"({item.fmt}) are on another camera's scale than line "
                f"{items[0].row.line} ({items[0].fmt}); counts of different "
                "cameras cannot be mixed, so read them as celsius (scale) or "
                "ingest them apart"
            )


def _read_items(
    manifest: str | Path, items: list[_Item], scale: str | None
) -> tuple[list[np.ndarray], str | None]:
    """Decode ``items`` in order, one read per run of frames from the same file."""
    out: list[np.ndarray] = []
    found_scale = None
    start = 0
    while start < len(items):
        stop = start + 1
        while stop < len(items) and items[stop].row.path == items[start].row.path:
            stop += 1
        run = items[start:stop]
        first = run[0]
        indices = None if first.index is None else [t.index for t in run]
        try:
            frames, found_scale = decode_frames(
                first.row.path, first.fmt, indices, scale
            )
        except FrameReadError as exc:
            raise FrameReadError(f"{_where(manifest, first)}: {exc}") from exc
        if indices is None and len(frames) != len(run):
            raise FrameReadError(f"{_where(manifest, first)}: expected one frame")
        out.extend(frames)
        start = stop
    return out, found_scale


def _fit(
    manifest: str | Path,
    item: _Item,
    frame: np.ndarray,
    shape: tuple[int, int],
    dtype: np.dtype,
    resize_to: tuple[int, int] | None,
) -> np.ndarray:
    """Check one decoded frame; resize and cast it to the dataset's shape and dtype."""
    where = _where(manifest, item)
    if frame.dtype.kind == "f" and not np.isfinite(frame).all():
        raise FrameReadError(
            f"{where}: {item.row.path.name} holds NaN or infinite values"
        )
    if frame.shape != shape:
        if resize_to is None:
            raise FrameReadError(
                f"{where}: {item.row.path.name} is {frame.shape[0]}x{frame.shape[1]}, "
                f"the first frame {shape[0]}x{shape[1]}; frames differ in size "
                "(set resize_to to resize them)"
            )
        frame = _resize(frame, shape)
    if frame.dtype == dtype or np.can_cast(frame.dtype, dtype, "safe"):
        return frame
    if frame.dtype.kind in "iu" and np.dtype(dtype).kind in "iu":
        limits = np.iinfo(dtype)
        if limits.min <= frame.min() and frame.max() <= limits.max:
            return frame
    raise FrameReadError(
        f"{where}: {item.row.path.name} has dtype {frame.dtype}, which the dataset's "
        f"{np.dtype(dtype)} (from the first frame) cannot hold"
    )


def _resize(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``frame`` to ``shape`` = (height, width), same dtype."""
    image = Image.fromarray(np.asarray(frame, dtype=np.float32), mode="F")
    resized = np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR))
    if frame.dtype.kind in "iu":
        limits = np.iinfo(frame.dtype)
        resized = np.clip(np.rint(resized), limits.min, limits.max)
    return resized.astype(frame.dtype)


def _metadata(items: list[_Item]) -> dict[str, list[str]]:
    """Per-frame text columns: the format, the time if given, the extra columns."""
    columns = {"format": [t.fmt for t in items]}
    if any(t.row.time for t in items):
        columns["time"] = [t.row.time for t in items]
    for name in items[0].row.metadata:
        columns[name] = [t.row.metadata.get(name, "") for t in items]
    return columns


def _where(manifest: str | Path, item: _Item) -> str:
    where = f"{manifest}, line {item.row.line}"
    return where if item.index is None else f"{where}, frame {item.index}"


def ingest(path: str | Path, data: dict, seed: int, threads: int = 2) -> str:
    """Ingest the data named by the ``data`` section of a configuration.

    The manifest section may also hold ``resize_to`` ([height, width]),
    ``scale`` and ``compression``; absent keys keep the defaults of
    :func:`ingest_manifest`. ``threads`` is its number of decoding threads.
    """
    if data["source"] == "synthetic":
        spec = synthetic.SyntheticSpec(**data["synthetic"], seed=seed)
        return ingest_synthetic(path, spec)
    manifest = data["manifest"]
    resize_to = manifest.get("resize_to")
    return ingest_manifest(
        path,
        manifest["path"],
        manifest["label_column"],
        manifest["labels"],
        resize_to=tuple(resize_to) if resize_to else None,
        scale=manifest.get("scale"),
        compression=manifest.get("compression"),
        threads=threads,
    )
