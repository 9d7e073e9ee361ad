"""Decode one thermal frame file into an array and its radiometric scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

#: What a pixel value measures, by decoded image mode.
_PIL_SCALES = {
    "L": ("intensity8", np.uint8),
    "I;16": ("raw_counts", np.uint16),
    "I;16B": ("raw_counts", np.uint16),
    "I;16L": ("raw_counts", np.uint16),
    "I": ("raw_counts", np.int32),
    "F": ("celsius", np.float32),
}


class FrameReadError(ValueError):
    """A frame file is missing, unreadable or not a single-channel thermal frame."""


def read_frame(path: str | Path) -> tuple[np.ndarray, str]:
    """Return ``(frame, radiometric_scale)`` for one image file.

    ``frame`` has shape ``(height, width)``. Single-channel PNG, JPEG and TIFF are
    decoded with Pillow: 8-bit as ``intensity8``, 16-bit as ``raw_counts``,
    32-bit float as ``celsius``. A ``.npy`` file must hold one 2-D array; float
    arrays are taken as ``celsius``. A colour image is refused, since a
    false-colour palette is not a temperature.
    """
    path = Path(path)
    if not path.is_file():
        raise FrameReadError(f"{path}: file not found")
    if path.suffix.lower() == ".npy":
        return _read_npy(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode not in _PIL_SCALES:
                raise FrameReadError(
                    f"{path}: image mode {mode!r} is not a single-channel thermal "
                    "frame (colour images may be false-colour palettes)"
                )
            scale, dtype = _PIL_SCALES[mode]
            frame = np.asarray(image, dtype=dtype)
    except (UnidentifiedImageError, OSError) as exc:
        raise FrameReadError(f"{path}: cannot decode image: {exc}") from exc
    return frame, scale


def _read_npy(path: Path) -> tuple[np.ndarray, str]:
    try:
        frame = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise FrameReadError(f"{path}: cannot read NumPy array: {exc}") from exc
    if frame.ndim != 2:
        raise FrameReadError(f"{path}: expected a 2-D frame, found shape {frame.shape}")
    if np.issubdtype(frame.dtype, np.floating):
        return frame.astype(np.float32), "celsius"
    if frame.dtype == np.uint8:
        return frame, "intensity8"
    return frame.astype(np.int32), "raw_counts"
