"""Decode thermal frame files into arrays and their radiometric scale.

Every reader returns frames of shape ``(n_frames, height, width)`` together with
the radiometric scale of their pixels, one of :data:`SCALES`:

``raw_counts``
    sensor counts (16-bit TIFF/PNG, NumPy integer arrays, FLIR FFF/SEQ unless
    Celsius is asked for, CPTV, Seek Thermal flat-field corrected frames);
``celsius``
    temperatures in degrees Celsius (float TIFF, NumPy float arrays, FLIR
    radiometric JPEG unless raw counts are asked for, FLIR FFF/SEQ when
    Celsius is asked for; the FLIR files through their own Planck constants,
    with the optional package flyr);
``intensity8``
    8-bit grey levels (8-bit PNG/TIFF/JPEG, grey images stored as RGB).

The format of a file is found from its content (magic bytes, and for JPEG the
FLIR metadata segment), never from its extension, so that the false-colour
preview of a FLIR radiometric JPEG is never mistaken for an 8-bit thermal
frame. A manifest may also name the format explicitly; see :data:`FORMATS`.
"""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from thermia.data import cameras
from thermia.data.cameras import FrameReadError, MissingExtraError

__all__ = [
    "FORMATS",
    "MULTI_FRAME_FORMATS",
    "SCALES",
    "FrameReadError",
    "MissingExtraError",
    "check_format",
    "count_frames",
    "decode_frames",
    "detect_format",
    "read_frame",
    "read_frames",
]

#: Radiometric scales a frame can be in.
SCALES = ("raw_counts", "celsius", "intensity8")

#: Format names accepted in a manifest's ``format`` column ("" or "auto": detect).
FORMATS = ("image", "flir_jpeg", "npy", "npz", "seek_mat", "fff", "cptv")

#: Formats whose files may hold several frames (a ``frame`` column indexes them).
MULTI_FRAME_FORMATS = ("npy", "npz", "fff", "cptv")

#: Scale and dtype of a single-channel Pillow image, by mode.
_PIL_SCALES = {
    "L": ("intensity8", np.uint8),
    "I;16": ("raw_counts", np.uint16),
    "I;16B": ("raw_counts", np.uint16),
    "I;16L": ("raw_counts", np.uint16),
    "I;16N": ("raw_counts", np.uint16),
    "I": ("raw_counts", np.int32),
    "F": ("celsius", np.float32),
}
_HEAD = 128


def detect_format(path: str | Path) -> str:
    """Return the format of ``path`` (one of :data:`FORMATS`) from its content.

    Raises
    ------
    FrameReadError
        If the file is missing or its content matches no known format.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD)
            if head.startswith(b"\xff\xd8"):
                handle.seek(0)
                return "flir_jpeg" if cameras.is_flir_jpeg(handle) else "image"
    except FileNotFoundError as exc:
        raise FrameReadError(f"{path}: file not found") from exc
    except OSError as exc:
        raise FrameReadError(f"{path}: cannot read file: {exc}") from exc
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    if head.startswith(b"MATLAB 5.0"):
        return "seek_mat"
    if head.startswith(b"FFF\x00"):
        return "fff"
    if head.startswith(b"\x1f\x8b") and _gunzip_head(path).startswith(b"CPTV"):
        return "cptv"
    if head.startswith((b"\x89PNG", b"II*\x00", b"MM\x00*")):
        return "image"
    raise FrameReadError(f"{path}: unknown file format (not an image or frame stack)")


def count_frames(path: str | Path, fmt: str | None = None) -> int:
    """Return how many frames ``path`` holds (1 for single-frame formats)."""
    path = Path(path)
    fmt = check_format(path, fmt)
    if fmt == "npy":
        return len(_npy_stack(_load_npy(path), path))
    if fmt == "npz":
        return len(_npz_stack(path))
    if fmt == "fff":
        return cameras.fff_count(path)
    if fmt == "cptv":
        return cameras.cptv_count(path)
    return 1


def read_frames(
    path: str | Path,
    fmt: str | None = None,
    indices: Sequence[int] | None = None,
    scale: str | None = None,
) -> tuple[np.ndarray, str]:
    """Decode frames of one file; return ``(frames, radiometric_scale)``.

    Parameters
    ----------
    path
        The file.
    fmt
        One of :data:`FORMATS`, or ``None``/``"auto"`` to detect it from the
        content. An explicit format that contradicts the content is an error.
    indices
        Which frames of a multi-frame file to return, in that order
        (0-based); ``None`` returns all of them. A single-frame file only
        accepts ``None`` or ``[0]``.
    scale
        The radiometric scale wanted, or ``None`` for the file's own scale.
        Only FLIR files can be converted: a radiometric JPEG gives
        ``celsius`` by default, or ``raw_counts``; an FFF file or SEQ video
        gives ``raw_counts`` by default, or ``celsius``. Celsius from either
        needs flyr (:class:`MissingExtraError` otherwise). Any other mismatch
        is an error.

    Returns
    -------
    frames : np.ndarray, shape (n_frames, height, width)
    radiometric_scale : str
    """
    path = Path(path)
    return decode_frames(path, check_format(path, fmt), indices, scale)


def decode_frames(
    path: Path,
    fmt: str,
    indices: Sequence[int] | None = None,
    scale: str | None = None,
) -> tuple[np.ndarray, str]:
    """:func:`read_frames` for a format already checked with :func:`check_format`."""
    if scale is not None and scale not in SCALES:
        raise FrameReadError(f"unknown radiometric scale {scale!r}")
    if fmt == "image":
        frame, native = _read_image(path)
        frames = frame[None]
    elif fmt == "flir_jpeg":
        frame, native = cameras.read_flir_jpeg(path, scale or "celsius")
        frames = frame[None]
    elif fmt == "seek_mat":
        frames, native = cameras.read_seek_mat(path)[None], "raw_counts"
    elif fmt == "npy":
        stack = _npy_stack(_load_npy(path), path)
        frames, native = _numeric(stack, path, indices)
        indices = None
    elif fmt == "npz":
        frames, native = _numeric(_npz_stack(path), path, indices)
        indices = None
    elif fmt == "fff":
        frames, native = cameras.read_fff(path, indices, scale or "raw_counts")
        indices = None
    else:
        frames, native = cameras.read_cptv(path, indices), "raw_counts"
        indices = None
    if indices is not None and list(indices) != [0]:
        raise FrameReadError(f"{path}: holds one frame; frame index {indices} given")
    if scale is not None and scale != native:
        raise FrameReadError(
            f"{path}: frames are in {native}, the dataset in {scale}; {fmt} files "
            "cannot be converted, so convert them beforehand or ingest them apart"
        )
    return frames, native


def read_frame(
    path: str | Path, fmt: str | None = None, index: int = 0, scale: str | None = None
) -> tuple[np.ndarray, str]:
    """Return ``(frame, radiometric_scale)``, ``frame`` of shape ``(height, width)``.

    ``index`` picks the frame of a multi-frame file; see :func:`read_frames`.
    """
    path = Path(path)
    fmt = check_format(path, fmt)
    indices = [index] if fmt in MULTI_FRAME_FORMATS or index != 0 else None
    frames, found = decode_frames(path, fmt, indices, scale)
    return frames[0], found


def check_format(path: str | Path, fmt: str | None) -> str:
    """Return the format of ``path``: ``fmt`` if its content agrees, else an error.

    ``fmt`` ``None``, ``""`` or ``"auto"`` returns the detected format. Naming
    ``image`` for a FLIR radiometric JPEG is refused, since its visible image
    is a false-colour rendering.
    """
    path = Path(path)
    found = detect_format(path)
    if fmt in (None, "", "auto"):
        return found
    if fmt not in FORMATS:
        raise FrameReadError(
            f"{path}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}"
        )
    if fmt == "image" and found == "flir_jpeg":
        raise FrameReadError(
            f"{path}: is a FLIR radiometric JPEG, whose visible image is a "
            "false-colour rendering, not a temperature; use format flir_jpeg"
        )
    if fmt != found:
        raise FrameReadError(f"{path}: content is {found}, the manifest says {fmt}")
    return fmt


def _gunzip_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(4)
    except (OSError, EOFError):
        return b""


def _read_image(path: Path) -> tuple[np.ndarray, str]:
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in _PIL_SCALES:
                scale, dtype = _PIL_SCALES[mode]
                return np.asarray(image, dtype=dtype), scale
            if mode in ("RGB", "RGBA", "P", "LA"):
                rgb = np.asarray(image.convert("RGB"))
                if (rgb[..., 0] == rgb[..., 1]).all() and (
                    rgb[..., 1] == rgb[..., 2]
                ).all():
                    return np.ascontiguousarray(rgb[..., 0]), "intensity8"
                raise FrameReadError(
                    f"{path}: colour image (mode {mode}) with unequal channels; a "
                    "false-colour palette is not a temperature and is refused"
                )
    except FrameReadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise FrameReadError(f"{path}: cannot decode image: {exc}") from exc
    raise FrameReadError(f"{path}: image mode {mode!r} is not a thermal frame")


def _load_npy(path: Path) -> np.ndarray:
    """Memory-map a ``.npy`` file; a damaged one is a :class:`FrameReadError`."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FrameReadError(f"{path}: cannot read NumPy file: {exc}") from exc


def _npy_stack(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 2:
        return array[None]
    if array.ndim != 3:
        raise FrameReadError(
            f"{path}: expected a frame (height, width) or a stack "
            f"(n_frames, height, width), found shape {array.shape}"
        )
    return array


def _npz_stack(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if "frames" in names:
                name = "frames"
            elif len(names) == 1:
                name = names[0]
            else:
                raise FrameReadError(
                    f"{path}: an .npz stack must hold one array or one named "
                    f"'frames'; found {', '.join(names)}"
                )
            return _npy_stack(archive[name], path)
    except FrameReadError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FrameReadError(f"{path}: cannot read NumPy archive: {exc}") from exc


def _numeric(
    stack: np.ndarray, path: Path, indices: Sequence[int] | None
) -> tuple[np.ndarray, str]:
    if indices is not None:
        bad = [i for i in indices if not 0 <= i < len(stack)]
        if bad:
            raise FrameReadError(
                f"{path}: frame index {bad[0]} out of range; the file holds "
                f"{len(stack)} frame(s)"
            )
        stack = stack[list(indices)]
    dtype = stack.dtype
    if dtype == np.uint8:
        return np.asarray(stack), "intensity8"
    if dtype.kind in "iu" and dtype.itemsize <= 4:
        return np.asarray(stack), "raw_counts"
    if dtype.kind == "f":
        return np.asarray(stack, dtype=np.float32), "celsius"
    raise FrameReadError(
        f"{path}: dtype {dtype} is not a thermal frame (expected uint8, a 16/32-bit "
        "integer, or float)"
    )
