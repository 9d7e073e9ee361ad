"""Decoders for camera-specific thermal files: Seek Thermal, FLIR, Cacophony CPTV.

FLIR radiometric JPEG needs the optional package ``flyr`` and CPTV the optional
package ``cptv``; FLIR FFF and SEQ raw counts and Seek Thermal ``.mat`` frames
are decoded here directly.
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

#: FLIR FFF record type holding the raw thermal counts.
_FFF_RAW = 1
_FFF_MAGIC = b"FFF\x00"
_JPEG_FLIR_APP1 = b"FLIR\x00"


class FrameReadError(ValueError):
    """A frame file is missing, unreadable or not a single-channel thermal frame."""


class MissingExtraError(FrameReadError):
    """Decoding a format needs an optional package that is not installed."""


def _extra(module: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"reading {what} needs the optional package {module!r}: "
            f"pip install {module}"
        ) from exc


# -- Seek Thermal ------------------------------------------------------------------


def read_seek_mat(path: Path) -> np.ndarray:
    """Flat-field correct a Seek Thermal raw frame saved as MATLAB ``raw``/``cal``.

    The shutter frame ``cal`` is subtracted from ``raw``; pixels that are 0 in
    either are dead and take the mean of their live 8-neighbours; the frame is
    then turned by 180 degrees (``flipud(fliplr(.))``) so that it is upright.

    Returns
    -------
    np.ndarray, shape (height, width), float32
        Flat-field corrected counts (signed; the zero point is the shutter).
    """
    scipy_io = importlib.import_module("scipy.io")
    try:
        content = scipy_io.loadmat(path)
    except (ValueError, OSError, TypeError) as exc:
        raise FrameReadError(f"{path}: cannot read MATLAB file: {exc}") from exc
    missing = [k for k in ("raw", "cal") if k not in content]
    if missing:
        raise FrameReadError(
            f"{path}: not a Seek Thermal raw frame; missing array(s) "
            f"{', '.join(missing)}"
        )
    raw = np.asarray(content["raw"], dtype=np.float32)
    cal = np.asarray(content["cal"], dtype=np.float32)
    if raw.ndim != 2 or raw.shape != cal.shape:
        raise FrameReadError(
            f"{path}: raw {raw.shape} and cal {cal.shape} are not one 2-D frame size"
        )
    dead = (raw == 0) | (cal == 0)
    frame = fill_dead_pixels(raw - cal, dead)
    return np.ascontiguousarray(np.flipud(np.fliplr(frame)))


def fill_dead_pixels(frame: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """Replace ``dead`` pixels by the mean of their live 8-neighbours.

    Parameters
    ----------
    frame : np.ndarray, shape (height, width)
    dead : np.ndarray of bool, shape (height, width)

    Returns
    -------
    np.ndarray, shape (height, width), float32
        A copy; a dead pixel with no live neighbour is repeated until one is
        reached (at most a few passes for the sparse Seek pattern).
    """
    out = np.asarray(frame, dtype=np.float32).copy()
    dead = dead.copy()
    while dead.any():
        live = np.pad(~dead, 1).astype(np.float32)
        values = np.pad(np.where(dead, 0.0, out), 1)
        total = np.zeros_like(out)
        count = np.zeros_like(out)
        h, w = out.shape
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                if dy == dx == 1:
                    continue
                total += values[dy : dy + h, dx : dx + w]
                count += live[dy : dy + h, dx : dx + w]
        fillable = dead & (count > 0)
        if not fillable.any():
            raise FrameReadError("every pixel of the frame is dead")
        out[fillable] = total[fillable] / count[fillable]
        dead &= ~fillable
    return out


# -- FLIR --------------------------------------------------------------------------


def is_flir_jpeg(handle: BinaryIO) -> bool:
    """Whether the JPEG open in ``handle`` (at its start) carries FLIR radiometric data.

    Walks the marker segments before the image data, looking for an APP1
    segment that begins with the FLIR signature.
    """
    if handle.read(2) != b"\xff\xd8":
        return False
    while True:
        marker = handle.read(2)
        if len(marker) < 2 or marker[0] != 0xFF or marker[1] in (0xDA, 0xD9):
            return False  # damaged, or start of scan / end of image reached
        size = handle.read(2)
        if len(size) < 2:
            return False
        length = int.from_bytes(size, "big") - 2
        if marker[1] == 0xE1:
            body = handle.read(min(length, len(_JPEG_FLIR_APP1)))
            if body == _JPEG_FLIR_APP1:
                return True
            length -= len(body)
        handle.seek(length, 1)


def read_flir_jpeg(path: Path, scale: str) -> tuple[np.ndarray, str]:
    """Decode the thermal frame embedded in a FLIR radiometric JPEG (needs flyr).

    ``scale`` is ``celsius`` (the counts through the file's Planck constants)
    or ``raw_counts``. The visible, false-colour picture is never used.
    """
    flyr = _extra("flyr", "FLIR radiometric JPEG")
    try:
        thermogram = flyr.unpack(str(path))
    except Exception as exc:  # flyr raises bare exceptions on damaged files
        raise FrameReadError(f"{path}: cannot decode FLIR JPEG: {exc}") from exc
    if scale == "celsius":
        return np.asarray(thermogram.celsius, dtype=np.float32), "celsius"
    if scale == "raw_counts":
        thermal = importlib.import_module("flyr.thermal")
        records = importlib.import_module("flyr.records")
        with path.open("rb") as handle:
            stream = records.extract_flir_app1(handle)
            found = records.parse_flir_records(stream)
            _, _, counts = thermal.parse_raw_data(stream, found[_FFF_RAW])
        return np.asarray(counts, dtype=np.uint16), "raw_counts"
    raise FrameReadError(f"{path}: a FLIR JPEG cannot be converted to {scale}")


def _fff_frames(data: bytes, path: Path) -> list[tuple[int, int, int]]:
    """Return ``(width, height, offset)`` of the raw counts of each FFF frame."""
    frames = []
    start = 0
    while start < len(data):
        if data[start : start + 4] != _FFF_MAGIC:
            raise FrameReadError(f"{path}: no FLIR FFF frame at byte {start}")
        for order in "<>":
            version, directory, n_records = struct.unpack_from(
                order + "III", data, start + 0x14
            )
            if 100 <= version < 200:
                break
        else:
            raise FrameReadError(f"{path}: unknown FFF version at byte {start}")
        end, raw = start + 0x40, None
        for i in range(n_records):
            kind, _, _, _, offset, length = struct.unpack_from(
                order + "HHIIII", data, start + directory + 32 * i
            )
            if kind == 0:
                continue
            end = max(end, start + offset + length)
            if kind == _FFF_RAW:
                raw = start + offset
        if raw is None:
            raise FrameReadError(f"{path}: FFF frame at byte {start} has no raw data")
        width, height = struct.unpack_from("<HH", data, raw + 2)
        if data[raw + 32 : raw + 36] == b"\x89PNG":
            raise FrameReadError(f"{path}: PNG-packed FFF raw data is not supported")
        if raw + 32 + 2 * width * height > len(data):
            raise FrameReadError(f"{path}: FFF frame at byte {start} is truncated")
        frames.append((width, height, raw + 32))
        start = end
    return frames


def fff_count(path: Path) -> int:
    """Number of frames in a FLIR FFF file or SEQ video."""
    return len(_fff_frames(path.read_bytes(), path))


def read_fff(path: Path, indices: Sequence[int] | None) -> np.ndarray:
    """Raw counts of a FLIR FFF frame or SEQ video, shape ``(n, height, width)``.

    A SEQ file is a run of FFF frames; each is decoded from its raw-data
    record (16-bit little-endian counts). Conversion to Celsius needs the
    camera's Planck constants and is not done here.
    """
    data = path.read_bytes()
    frames = _fff_frames(data, path)
    picked = _pick(path, len(frames), indices)
    out = []
    for i in picked:
        width, height, offset = frames[i]
        counts = np.frombuffer(data, dtype="<u2", count=width * height, offset=offset)
        out.append(counts.reshape(height, width).astype(np.uint16))
    return _stack(path, out)


# -- Cacophony CPTV ----------------------------------------------------------------


def cptv_count(path: Path) -> int:
    """Number of frames in a CPTV video (decodes the whole file; needs cptv)."""
    return len(read_cptv(path, None))


def read_cptv(path: Path, indices: Sequence[int] | None) -> np.ndarray:
    """Raw counts of a Cacophony CPTV video, shape ``(n, height, width)``."""
    cptv = _extra("cptv", "Cacophony CPTV video")
    try:
        with path.open("rb") as handle:
            frames = [np.array(f.pix, dtype=np.uint16) for f in cptv.CPTVReader(handle)]
    except Exception as exc:  # the cptv reader raises bare exceptions
        raise FrameReadError(f"{path}: cannot decode CPTV video: {exc}") from exc
    picked = _pick(path, len(frames), indices)
    return _stack(path, [frames[i] for i in picked])


def _pick(path: Path, n: int, indices: Sequence[int] | None) -> list[int]:
    if indices is None:
        return list(range(n))
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise FrameReadError(
            f"{path}: frame index {bad[0]} out of range; the file holds {n} frame(s)"
        )
    return list(indices)


def _stack(path: Path, frames: list[np.ndarray]) -> np.ndarray:
    if not frames:
        raise FrameReadError(f"{path}: holds no frames")
    if len({f.shape for f in frames}) > 1:
        raise FrameReadError(f"{path}: frames of different sizes in one file")
    return np.stack(frames)
