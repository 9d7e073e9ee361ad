"""Ingest: a manifest of frame files, or the synthetic generator, into frames.h5."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from thermia.data import synthetic
from thermia.data.manifest import ManifestRow, read_manifest
from thermia.data.readers import FrameReadError, read_frame
from thermia.data.storage import FrameBlock, write_frames

log = logging.getLogger(__name__)

BATCH = 256


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
) -> str:
    """Decode every frame of ``manifest`` into ``path``; return its content hash.

    Every row is checked before anything is kept: a missing or undecodable
    file, a frame whose shape, dtype or radiometric scale differs from the
    first, or non-finite values stop the ingest with the row named.
    """
    rows, names = read_manifest(manifest, label_column, labels)
    first, scale = _read_row(manifest, rows[0])
    class_of = {name: i for i, name in enumerate(names)}

    def blocks() -> Iterator[FrameBlock]:
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            frames = np.empty((len(chunk), *first.shape), dtype=first.dtype)
            for i, row in enumerate(chunk):
                frame, row_scale = _read_row(manifest, row)
                if frame.shape != first.shape or frame.dtype != first.dtype:
                    raise FrameReadError(
                        f"{manifest}, line {row.line}: {row.path.name} is "
                        f"{frame.shape} {frame.dtype}, the first frame is "
                        f"{first.shape} {first.dtype}"
                    )
                if row_scale != scale:
                    raise FrameReadError(
                        f"{manifest}, line {row.line}: {row.path.name} is in "
                        f"{row_scale}, earlier frames in {scale}"
                    )
                frames[i] = frame
            yield FrameBlock(
                frames=frames,
                subject=np.array([r.subject for r in chunk], dtype=object),
                session=np.array([r.session for r in chunk], dtype=object),
                label=np.array([class_of[r.label] for r in chunk], dtype=np.int64),
                frame=np.array([r.frame for r in chunk], dtype=np.int64),
            )

    digest = write_frames(
        path,
        blocks(),
        n_frames=len(rows),
        shape=first.shape,
        dtype=first.dtype,
        label_names=names,
        source=f"manifest:{Path(manifest).name}",
        radiometric_scale=scale,
    )
    log.info("wrote %d frames from %s to %s", len(rows), manifest, path)
    return digest


def _read_row(manifest: str | Path, row: ManifestRow) -> tuple[np.ndarray, str]:
    try:
        frame, scale = read_frame(row.path)
    except FrameReadError as exc:
        raise FrameReadError(f"{manifest}, line {row.line}: {exc}") from exc
    if np.issubdtype(frame.dtype, np.floating) and not np.isfinite(frame).all():
        raise FrameReadError(
            f"{manifest}, line {row.line}: {row.path.name} holds NaN or infinite values"
        )
    return frame, scale


def ingest(path: str | Path, data: dict, seed: int) -> str:
    """Ingest the data named by the ``data`` section of a configuration."""
    if data["source"] == "synthetic":
        spec = synthetic.SyntheticSpec(**data["synthetic"], seed=seed)
        return ingest_synthetic(path, spec)
    manifest = data["manifest"]
    return ingest_manifest(
        path, manifest["path"], manifest["label_column"], manifest["labels"]
    )
