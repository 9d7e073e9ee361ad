"""Decoders for camera-specific thermal files: Seek Thermal, FLIR, Cacophony CPTV.

Seek Thermal ``.mat`` frames and the raw counts of FLIR FFF files and SEQ videos
are decoded here directly. FLIR radiometric JPEGs, and FFF/SEQ frames in degrees
Celsius, need the optional package ``flyr`` (the ``flir`` extra): for FFF/SEQ the
record directory is still walked here, and each frame's counts and
camera-information record (Planck constants, emissivity, atmosphere) are handed
to flyr for the conversion. CPTV needs the optional package ``cptv``.
"""

from __future__ import annotations

import importlib
import io
import logging
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

log = logging.getLogger(__name__)

#: FLIR FFF record type holding the raw thermal counts.
_FFF_RAW = 1
#: FLIR FFF record type holding the camera information: Planck constants,
#: emissivity, distance and atmosphere (``flyr.records.RecordIndex.CAMERA_INFO``).
_FFF_CAMERA_INFO = 32
#: Bytes of the camera-information record that flyr reads (up to offset 0x340).
_CAMERA_INFO_SIZE = 0x340
#: Absolute zero in degrees Celsius; a colder result means damaged constants.
_ABSOLUTE_ZERO = -273.15
_FFF_MAGIC = b"FFF\x00"
_JPEG_FLIR_APP1 = b"FLIR\x00"


class FrameReadError(ValueError):
    """A frame file is missing, unreadable or not a single-channel thermal frame."""


class MissingExtraError(FrameReadError):
    """Decoding a format needs an optional package that is not installed."""


def optional_module(module: str, need: str):
    """Import an optional package, or say that ``need`` requires it.

    ``need`` opens the message, e.g. ``"reading CPTV video"``; the package's
    PyPI name is its import name for every optional package thermia uses.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{need} needs the optional package {module!r}: pip install {module}"
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
    if scale not in ("celsius", "raw_counts"):
        raise FrameReadError(f"{path}: a FLIR JPEG cannot be converted to {scale}")
    flyr = optional_module("flyr", "reading FLIR radiometric JPEG")
    try:
        if scale == "celsius":
            celsius = flyr.unpack(str(path)).celsius
            return np.asarray(celsius, dtype=np.float32), "celsius"
        thermal = importlib.import_module("flyr.thermal")
        records = importlib.import_module("flyr.records")
        with path.open("rb") as handle:
            stream = records.extract_flir_app1(handle)
            found = records.parse_flir_records(stream)
            _, _, counts = thermal.parse_raw_data(stream, found[_FFF_RAW])
        return np.asarray(counts, dtype=np.uint16), "raw_counts"
    except Exception as exc:  # flyr raises bare exceptions on damaged files
        raise FrameReadError(
            f"{path}: cannot decode FLIR JPEG, its thermal data is damaged or "
            f"truncated ({type(exc).__name__}: {exc})"
        ) from exc


class _FffFrame(NamedTuple):
    """Where one FFF frame and its records lie in a file's bytes."""

    start: int  #: byte of the frame's ``FFF\0`` header in the file
    end: int  #: byte just past the frame's last record
    width: int
    height: int
    counts: int  #: byte of the first 16-bit count in the file
    camera_info: tuple[int, int, int] | None
    """``(entry, offset, length)`` of the camera-information record, the offset
    relative to ``start``, or ``None`` when the frame has none."""


def _fff_frames(data: bytes, path: Path) -> list[_FffFrame]:
    """Walk the FFF headers and record directories of an FFF file or SEQ video.

    The header and directory may be little- or big-endian; the version field
    (100..199) tells which. A SEQ video is a run of FFF frames, each starting
    just past the last record of the one before.

    Returns
    -------
    list of _FffFrame
        One per frame, in file order.

    Raises
    ------
    FrameReadError
        If a frame has no FFF header, an unknown version, no raw-data record,
        PNG-packed counts, or is cut short.
    """
    frames = []
    start = 0
    while start < len(data):
        if data[start : start + 4] != _FFF_MAGIC:
            raise FrameReadError(f"{path}: no FLIR FFF frame at byte {start}")
        try:
            frames.append(_fff_frame(data, start, path))
        except struct.error as exc:
            raise FrameReadError(
                f"{path}: FFF frame at byte {start} is truncated"
            ) from exc
        start = frames[-1].end
    return frames


def _fff_frame(data: bytes, start: int, path: Path) -> _FffFrame:
    """Read the header and record directory of the FFF frame at byte ``start``."""
    for order in "<>":
        version, directory, n_records = struct.unpack_from(
            order + "III", data, start + 0x14
        )
        if 100 <= version < 200:
            break
    else:
        raise FrameReadError(f"{path}: unknown FFF version at byte {start}")
    end, raw, camera_info = start + 0x40, None, None
    for i in range(n_records):
        kind, _, _, _, offset, length = struct.unpack_from(
            order + "HHIIII", data, start + directory + 32 * i
        )
        if kind == 0:
            continue
        end = max(end, start + offset + length)
        if kind == _FFF_RAW:
            raw = start + offset
        elif kind == _FFF_CAMERA_INFO:
            camera_info = (32 * i, offset, length)
    if raw is None:
        raise FrameReadError(f"{path}: FFF frame at byte {start} has no raw data")
    width, height = struct.unpack_from("<HH", data, raw + 2)
    if data[raw + 32 : raw + 36] == b"\x89PNG":
        raise FrameReadError(f"{path}: PNG-packed FFF raw data is not supported")
    if raw + 32 + 2 * width * height > len(data):
        raise FrameReadError(f"{path}: FFF frame at byte {start} is truncated")
    return _FffFrame(start, end, width, height, raw + 32, camera_info)


def fff_count(path: Path) -> int:
    """Number of frames in a FLIR FFF file or SEQ video."""
    return len(_fff_frames(path.read_bytes(), path))


def read_fff(
    path: Path, indices: Sequence[int] | None, scale: str = "raw_counts"
) -> tuple[np.ndarray, str]:
    """Decode frames of a FLIR FFF file or SEQ video.

    A SEQ file is a run of FFF frames; each frame's counts come from its
    raw-data record (16-bit little-endian). Raw counts need no optional
    package. Celsius needs flyr: each frame's own camera-information record is
    parsed by ``flyr.thermal.parse_camera_info`` and its counts converted by
    ``flyr.thermogram.FlyrThermogram`` with the file's Planck constants,
    emissivity, object distance, reflected and atmospheric temperatures and
    humidity, as for a FLIR radiometric JPEG.

    Parameters
    ----------
    path
        The FFF or SEQ file.
    indices
        Frames to return, in that order (0-based); ``None`` returns all.
    scale
        ``raw_counts`` (what :func:`thermia.data.readers.read_frames` returns
        for these files when no scale is asked for) or ``celsius``.

    Returns
    -------
    frames : np.ndarray, shape (n_frames, height, width)
        uint16 counts, or float32 degrees Celsius.
    scale : str
        ``scale`` as given.

    Raises
    ------
    MissingExtraError
        For ``celsius`` when flyr is not installed.
    FrameReadError
        If the file is damaged or truncated, or for ``celsius`` when a frame has
        no usable camera-information record: missing, cut short, or big-endian
        (flyr reads it as little-endian only, so it is refused rather than
        decoded into wrong temperatures).
    """
    if scale not in ("raw_counts", "celsius"):
        raise FrameReadError(
            f"{path}: a FLIR FFF/SEQ file cannot be converted to {scale}"
        )
    if scale == "celsius":
        optional_module("flyr", f"reading {path} (FLIR FFF/SEQ) in celsius")
        thermal = importlib.import_module("flyr.thermal")
        thermogram = importlib.import_module("flyr.thermogram")
    data = path.read_bytes()
    frames = _fff_frames(data, path)
    out = []
    for i in _pick(path, len(frames), indices):
        frame = frames[i]
        counts = np.frombuffer(
            data, dtype="<u2", count=frame.width * frame.height, offset=frame.counts
        ).reshape(frame.height, frame.width)
        if scale == "raw_counts":
            out.append(counts.astype(np.uint16))
            continue
        info = _camera_info(data, frame, i, path, thermal)
        try:
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                celsius = thermogram.FlyrThermogram(counts, info).celsius
        except (ArithmeticError, ValueError) as exc:  # math on the constants
            raise FrameReadError(
                f"{path}: frame {i}: its camera-information record gives no "
                f"temperature ({exc!r}); the record looks damaged"
            ) from exc
        bad = np.count_nonzero(~np.isfinite(celsius) | (celsius < _ABSOLUTE_ZERO))
        if bad:
            raise FrameReadError(
                f"{path}: frame {i}: {bad} pixel(s) come out non-finite or below "
                "absolute zero; the camera-information record looks damaged"
            )
        out.append(np.asarray(celsius, dtype=np.float32))
    return _stack(path, out), scale


def _camera_info(
    data: bytes, frame: _FffFrame, index: int, path: Path, thermal
) -> dict[str, float]:
    """Parse the camera-information record of one FFF frame with flyr.

    The record has its own byte order, independent of the FFF header's: its
    first 16-bit word reads 2 in that order (SEQ videos are seen with a
    big-endian header and little-endian records). flyr reads the record as
    little-endian, so a big-endian one is refused. A relative humidity stored
    in percent, as some FFF files do, is brought to the fraction flyr expects.
    """
    where = f"{path}: frame {index} (FFF frame at byte {frame.start})"
    if frame.camera_info is None:
        raise FrameReadError(
            f"{where} has no camera-information record, so no Planck constants; "
            "it can only be read as raw_counts"
        )
    entry, offset, length = frame.camera_info
    record = data[frame.start + offset : frame.start + offset + length]
    if len(record) < length:
        raise FrameReadError(f"{where}: camera-information record is truncated")
    if length < _CAMERA_INFO_SIZE:
        raise FrameReadError(
            f"{where}: camera-information record has {length} bytes, fewer than "
            f"the {_CAMERA_INFO_SIZE} that hold the Planck constants"
        )
    if record[:2] == b"\x00\x02":
        raise FrameReadError(
            f"{where}: camera-information record is big-endian, which flyr "
            "cannot read; read the file as raw_counts instead"
        )
    if record[:2] != b"\x02\x00":
        raise FrameReadError(
            f"{where}: camera-information record has an unknown byte-order "
            f"mark {record[:2].hex()}"
        )
    stream = io.BytesIO(data[frame.start : frame.end])
    info = thermal.parse_camera_info(stream, (entry, _FFF_CAMERA_INFO, offset, length))
    if info["relative_humidity"] > 2:
        log.debug("%s: relative humidity stored in percent", where)
        info["relative_humidity"] /= 100
    return info


# -- Cacophony CPTV ----------------------------------------------------------------


def cptv_count(path: Path) -> int:
    """Number of frames in a CPTV video (decodes the whole file; needs cptv)."""
    return len(read_cptv(path, None))


def read_cptv(path: Path, indices: Sequence[int] | None) -> np.ndarray:
    """Raw counts of a Cacophony CPTV video, shape ``(n, height, width)``."""
    cptv = optional_module("cptv", "reading Cacophony CPTV video")
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
