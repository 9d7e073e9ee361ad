"""Fixtures shared across the test suite."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from thermia.data.storage import FrameBlock, write_frames


@pytest.fixture
def frames_file(tmp_path: Path) -> Callable[..., Path]:
    """Return a function that writes a small frames file and returns its path.

    The function takes ``frames`` ``(n, h, w)`` and the per-frame ``subject``,
    ``session`` and ``label`` columns (``frame`` defaults to the row number);
    each call writes a new file under ``tmp_path``.
    """
    counter = iter(range(10**6))

    def write(
        frames: np.ndarray,
        subject: Sequence[str],
        session: Sequence[str],
        label: Sequence[int],
        frame: Sequence[int] | None = None,
        label_names: tuple[str, ...] = ("baseline", "stress"),
        name: str | None = None,
    ) -> Path:
        path = tmp_path / (name or f"frames_{next(counter)}.h5")
        n = len(frames)
        block = FrameBlock(
            frames=np.asarray(frames),
            subject=np.asarray(subject, dtype=str),
            session=np.asarray(session, dtype=str),
            label=np.asarray(label, dtype=np.int64),
            frame=np.arange(n) if frame is None else np.asarray(frame),
        )
        write_frames(
            path,
            [block],
            n_frames=n,
            shape=tuple(frames.shape[1:]),
            dtype=frames.dtype,
            label_names=label_names,
            source="test",
            radiometric_scale="counts",
        )
        return path

    return write
