"""Frame readers on real files, and on files converted from real ones in the test."""

from __future__ import annotations

import csv
import json
import os
import struct
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from thermia.data.ingest import ingest_manifest
from thermia.data.readers import (
    FrameReadError,
    MissingExtraError,
    count_frames,
    detect_format,
    read_frame,
    read_frames,
)

FILES = Path(__file__).resolve().parent / "files"
RAW16 = FILES / "IR_moving_car_RAW_uint16.tiff"
CELSIUS = FILES / "IR_moving_car_TEMP_float32_celsius.tif"
FLIR_JPEG = FILES / "IR_moving_car.jpg"
SEEK_PNG = FILES / "seek_ffc_calibrated.png"
FFF = FILES / "frame_000000_le.fff"
#: Per-frame statistics of the FFF and SEQ fixtures in °C, decoded by flirpy.
FLIRPY = json.loads((FILES / "flir_fff_celsius_flirpy.json").read_text())
#: Tolerance (°C) against flirpy. flirpy turns the stored Kelvin ambient
#: temperatures to Celsius with 273.14 and back with 273.15, which puts its
#: results 0.5 mK (FFF) and 1.4 mK (SEQ) below flyr's, and rounding the
#: reference to 1 mK adds up to 0.5 mK. 5 mK leaves room for both and is still
#: 20 times finer than the 0.1 °C a FLIR camera reports.
FLIRPY_TOL = 0.005


def shared() -> Path:
    env = os.environ.get("THERMIA_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


def test_16bit_tiff_is_raw_counts_and_png_copy_agrees(tmp_path):
    frame, scale = read_frame(RAW16)
    assert scale == "raw_counts" and frame.dtype == np.uint16
    assert frame.shape == (240, 320) and (frame.min(), frame.max()) == (13046, 16736)
    png = tmp_path / "copy.png"
    Image.open(RAW16).save(png)  # 16-bit PNG written by Pillow from the real TIFF
    copy, copy_scale = read_frame(png)
    assert detect_format(png) == "image" and copy_scale == "raw_counts"
    np.testing.assert_array_equal(copy, frame)


def test_8bit_png_tiff_and_jpeg(tmp_path):
    frame, scale = read_frame(SEEK_PNG)  # grey stored as RGB: channels equal
    assert scale == "intensity8" and frame.shape == (240, 320)
    expected = np.asarray(Image.open(SEEK_PNG))[..., 0]
    np.testing.assert_array_equal(frame, expected)
    Image.fromarray(frame).save(tmp_path / "grey.tif")
    Image.fromarray(frame).save(tmp_path / "grey.jpg", quality=95)
    tif, tif_scale = read_frame(tmp_path / "grey.tif")
    np.testing.assert_array_equal(tif, frame)
    jpg, jpg_scale = read_frame(tmp_path / "grey.jpg")
    assert (tif_scale, jpg_scale) == ("intensity8", "intensity8")
    assert detect_format(tmp_path / "grey.jpg") == "image"
    assert np.abs(jpg.astype(int) - frame).mean() < 3


def test_in_car_jpeg_is_plain_intensity():
    root = shared() / "data" / "thermal-incar"
    if not (root / "manifest.csv").is_file():
        pytest.skip(f"shared in-car data not found at {root}")
    with (root / "manifest.csv").open(newline="") as handle:
        first = next(csv.DictReader(handle))
    path = root / first["path"]
    frame, scale = read_frame(path)
    assert detect_format(path) == "image" and scale == "intensity8"
    assert frame.shape == (240, 320) and frame.dtype == np.uint8


def test_float_tiff_is_celsius():
    frame, scale = read_frame(CELSIUS)
    assert scale == "celsius" and frame.dtype == np.float32
    assert -11 < frame.min() < -10 and 14 < frame.max() < 15


def test_false_colour_rgb_is_refused(tmp_path):
    grey = np.asarray(Image.open(SEEK_PNG))[..., 0]
    rgb = np.stack([grey, 255 - grey, grey // 2], axis=-1)  # a palette rendering
    Image.fromarray(rgb).save(tmp_path / "palette.png")
    with pytest.raises(FrameReadError, match="false-colour") as caught:
        read_frame(tmp_path / "palette.png")
    assert "cannot decode" not in str(caught.value)
    assert str(caught.value).count("palette.png") == 1


def test_flir_jpeg_is_told_apart_by_content(tmp_path):
    pytest.importorskip("flyr")
    renamed = tmp_path / "looks_plain.png"  # the extension must not matter
    renamed.write_bytes(FLIR_JPEG.read_bytes())
    assert detect_format(FLIR_JPEG) == "flir_jpeg"
    assert detect_format(renamed) == "flir_jpeg"
    celsius, scale = read_frame(FLIR_JPEG)
    assert scale == "celsius" and celsius.shape == (240, 320)
    reference, _ = read_frame(CELSIUS)  # the same scene exported in °C
    assert np.abs(celsius - reference).max() < 0.5
    counts, counts_scale = read_frame(FLIR_JPEG, scale="raw_counts")
    assert counts_scale == "raw_counts"
    np.testing.assert_array_equal(counts, read_frame(RAW16)[0])
    with pytest.raises(FrameReadError, match="false-colour rendering"):
        read_frame(FLIR_JPEG, fmt="image")


@pytest.fixture
def no_flyr(monkeypatch):
    """Make ``import flyr`` and its submodules fail as if flyr were not installed."""
    loaded = {name for name in sys.modules if name.split(".")[0] == "flyr"}
    for name in {"flyr", *loaded}:
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_extra_names_the_package(no_flyr):
    with pytest.raises(MissingExtraError, match="pip install flyr"):
        read_frame(FLIR_JPEG)


def test_npy_and_npz_stacks(tmp_path):
    counts = read_frame(RAW16)[0]
    stack = np.stack([counts, counts[::-1], counts[:, ::-1]])
    np.save(tmp_path / "stack.npy", stack)
    np.savez_compressed(tmp_path / "stack.npz", frames=stack)
    np.save(tmp_path / "one.npy", read_frame(CELSIUS)[0])
    for name in ("stack.npy", "stack.npz"):
        assert count_frames(tmp_path / name) == 3
        frames, scale = read_frames(tmp_path / name, indices=[2, 0])
        assert scale == "raw_counts"
        np.testing.assert_array_equal(frames, stack[[2, 0]])
        with pytest.raises(FrameReadError, match="index 3 out of range"):
            read_frame(tmp_path / name, index=3)
    frame, scale = read_frame(tmp_path / "one.npy")
    assert scale == "celsius" and frame.shape == (240, 320)
    np.save(tmp_path / "flags.npy", counts > 14000)
    with pytest.raises(FrameReadError, match="dtype bool"):
        read_frame(tmp_path / "flags.npy")


def test_seek_mat_matches_its_processed_reference():
    frame, scale = read_frame(FILES / "seek_face.mat")
    content = scipy.io.loadmat(FILES / "seek_face.mat")
    raw, cal = content["raw"], content["cal"]
    # The reference is stored unrotated; turn it as the reader turns the frame.
    reference = np.flipud(np.fliplr(content["py_processed"]))
    assert scale == "raw_counts" and frame.shape == raw.shape
    dead = np.flipud(np.fliplr((raw == 0) | (cal == 0)))
    assert dead.sum() > 1000  # the Seek dead-pixel pattern is present
    live = ~dead
    expected = np.flipud(np.fliplr(raw.astype(np.float64) - cal))
    np.testing.assert_allclose(frame[live], expected[live])
    agree = np.corrcoef(frame.ravel(), reference.ravel())[0, 1]
    unturned = np.corrcoef(frame.ravel(), content["py_processed"].ravel())[0, 1]
    assert agree > 0.95 and unturned < 0.0
    # each dead pixel holds the mean of its live neighbours (brute force)
    y, x = np.argwhere(dead)[len(np.argwhere(dead)) // 2]
    window = np.s_[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
    neighbours = expected[window][live[window]]
    assert frame[y, x] == pytest.approx(neighbours.mean(), rel=1e-5)


def seq_fixture() -> Path:
    path = shared() / "fixtures" / "raw-formats" / "flir" / "test.seq"
    if not path.is_file():
        pytest.skip(f"shared FLIR SEQ fixture not found at {path}")
    return path


def assert_matches_flirpy(frames: np.ndarray, reference: list[dict]) -> None:
    """Compare each frame's statistics with flirpy's, within :data:`FLIRPY_TOL`."""
    assert len(frames) == len(reference)
    for i, (frame, expected) in enumerate(zip(frames, reference, strict=True)):
        found = {"min": frame.min(), "max": frame.max(), "mean": frame.mean()}
        for name in expected:
            if name.startswith("p"):
                found[name] = np.percentile(frame, int(name[1:]))
        for name, value in expected.items():
            assert found[name] == pytest.approx(value, abs=FLIRPY_TOL), (i, name)


def fff_camera_info(data: bytes) -> tuple[int, int]:
    """Directory entry and offset of the camera-info record of the FFF fixture."""
    entry = 0x40  # the fixture's little-endian directory, camera info first
    kind, offset = struct.unpack_from("<H10xI", data, entry)
    assert kind == 32
    return entry, offset


def test_flir_fff_raw_counts():
    path = FFF
    assert detect_format(path) == "fff" and count_frames(path) == 1
    frame, scale = read_frame(path)
    assert scale == "raw_counts" and frame.shape == (240, 320)
    assert frame.dtype == np.uint16 and 17000 < frame.mean() < 19500


def test_flir_fff_celsius_matches_flirpy():
    pytest.importorskip("flyr")
    frames, scale = read_frames(FFF, scale="celsius")
    assert scale == "celsius" and frames.shape == (1, 240, 320)
    assert frames.dtype == np.float32
    assert_matches_flirpy(frames, FLIRPY["frame_000000_le.fff"])
    frame, scale = read_frame(FFF, scale="celsius")
    assert scale == "celsius" and 22.9 < frame.min() < frame.max() < 29.5
    assert read_frame(FFF)[1] == "raw_counts"  # no scale asked: raw counts
    with pytest.raises(FrameReadError, match="cannot be converted to intensity8"):
        read_frame(FFF, scale="intensity8")


def test_flir_fff_celsius_needs_flyr_raw_counts_do_not(no_flyr):
    with pytest.raises(MissingExtraError, match=r"frame_000000_le\.fff.*pip install"):
        read_frame(FFF, scale="celsius")
    frame, scale = read_frame(FFF, scale="raw_counts")
    assert scale == "raw_counts" and frame.dtype == np.uint16
    assert read_frame(FFF)[1] == "raw_counts"


@pytest.mark.parametrize("scale", ["raw_counts", "celsius"])
@pytest.mark.parametrize("cut", [30, 100, 2000, 100_000])
def test_truncated_fff_names_the_file(tmp_path, cut, scale):
    # cut in the header, the record directory, the camera-info record, the counts
    if scale == "celsius":
        pytest.importorskip("flyr")
    path = tmp_path / "cut.fff"
    path.write_bytes(FFF.read_bytes()[:cut])
    with pytest.raises(FrameReadError, match=r"cut\.fff: FFF frame .* truncated"):
        read_frame(path, scale=scale)


def test_flir_fff_camera_info_that_flyr_cannot_read(tmp_path):
    pytest.importorskip("flyr")
    data = bytearray(FFF.read_bytes())
    entry, offset = fff_camera_info(data)

    # Humidity only matters through the air between object and camera, which
    # the fixture sets to 0 m: put the object 50 m away, then store the
    # humidity as 50 (%) instead of 0.5.
    far = bytearray(data)
    assert struct.unpack_from("<f", far, offset + 0x3C)[0] == 0.5
    struct.pack_into("<f", far, offset + 0x24, 50.0)
    percent = bytearray(far)
    struct.pack_into("<f", percent, offset + 0x3C, 50.0)
    (tmp_path / "far.fff").write_bytes(far)
    (tmp_path / "percent.fff").write_bytes(percent)
    expected = read_frame(tmp_path / "far.fff", scale="celsius")[0]
    assert np.abs(expected - read_frame(FFF, scale="celsius")[0]).min() > 0.1
    found = read_frame(tmp_path / "percent.fff", scale="celsius")[0]
    np.testing.assert_allclose(found, expected, atol=1e-4)

    swapped = bytearray(data)  # a big-endian camera-info record
    swapped[offset : offset + 2] = b"\x00\x02"
    (tmp_path / "swapped.fff").write_bytes(swapped)
    with pytest.raises(FrameReadError, match=r"swapped\.fff.*big-endian"):
        read_frame(tmp_path / "swapped.fff", scale="celsius")

    missing = bytearray(data)  # the directory entry marked free
    missing[entry : entry + 2] = b"\x00\x00"
    (tmp_path / "missing.fff").write_bytes(missing)
    with pytest.raises(FrameReadError, match=r"missing\.fff.*no camera-info"):
        read_frame(tmp_path / "missing.fff", scale="celsius")

    for name, field, value in [("no_r1.fff", 0x58, -1.0), ("no_e.fff", 0x20, 0.0)]:
        damaged = bytearray(data)  # Planck R1 negative, emissivity 0
        struct.pack_into("<f", damaged, offset + field, value)
        (tmp_path / name).write_bytes(damaged)
        with pytest.raises(FrameReadError, match=rf"{name}: frame 0: .*damaged"):
            read_frame(tmp_path / name, scale="celsius")

    for name in ("swapped.fff", "missing.fff"):  # raw counts are unaffected
        counts = read_frame(tmp_path / name)[0]
        np.testing.assert_array_equal(counts, read_frame(FFF)[0])


def test_flir_seq_frames():
    path = seq_fixture()
    assert detect_format(path) == "fff" and count_frames(path) == 7
    frames, scale = read_frames(path, indices=[6, 0])
    assert scale == "raw_counts" and frames.shape == (2, 512, 640)
    assert not np.array_equal(frames[0], frames[1])


def test_flir_seq_celsius_matches_flirpy(tmp_path):
    pytest.importorskip("flyr")
    path = seq_fixture()
    frames, scale = read_frames(path, scale="celsius")
    assert scale == "celsius" and frames.shape == (7, 512, 640)
    assert_matches_flirpy(frames, FLIRPY["test.seq"])
    picked, _ = read_frames(path, indices=[6, 0], scale="celsius")
    np.testing.assert_array_equal(picked, frames[[6, 0]])
    # cut inside the first frame's camera-info record, which follows its counts
    cut = tmp_path / "cut.seq"
    cut.write_bytes(path.read_bytes()[:656_000])
    assert read_frames(cut)[0].shape == (1, 512, 640)
    with pytest.raises(FrameReadError, match=r"cut\.seq.*frame 0.*truncated"):
        read_frames(cut, scale="celsius")


def test_ingest_fff_in_celsius(tmp_path):
    pytest.importorskip("flyr")
    (tmp_path / "a.fff").write_bytes(FFF.read_bytes())
    celsius = read_frame(FFF, scale="celsius")[0]
    np.save(tmp_path / "b.npy", celsius[::-1])  # a float frame: °C too
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,subject,session,label\na.fff,s1,x,a\nb.npy,s2,y,b\n")
    out = tmp_path / "frames.h5"
    ingest_manifest(out, manifest, scale="celsius")
    with h5py.File(out) as f:
        assert f.attrs["radiometric_scale"] == "celsius"
        assert f["frames"].dtype == np.float32 and f["frames"].shape == (2, 240, 320)
        np.testing.assert_array_equal(f["frames"][0], celsius)


def test_cptv_video():
    pytest.importorskip("cptv")
    path = FILES / "v2.cptv"
    assert detect_format(path) == "cptv" and count_frames(path) == 100
    frames, scale = read_frames(path, indices=[0, 99])
    assert scale == "raw_counts" and frames.shape == (2, 120, 160)
    assert frames.dtype == np.uint16 and 2000 < frames.mean() < 4000


def test_explicit_format_must_match_content(tmp_path):
    with pytest.raises(FrameReadError, match="content is image, the manifest says npy"):
        read_frame(RAW16, fmt="npy")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(FrameReadError, match="unknown file format"):
        read_frame(tmp_path / "junk.png")
    with pytest.raises(FrameReadError, match="file not found"):
        read_frame(tmp_path / "absent.png")


@pytest.mark.parametrize("scale", ["celsius", "raw_counts"])
def test_truncated_flir_jpeg(tmp_path, scale):
    pytest.importorskip("flyr", reason="the flir extra is not installed")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((FILES / "IR_moving_car.jpg").read_bytes()[:40_000])
    with pytest.raises(FrameReadError, match=r"cut\.jpg: .*damaged or truncated \("):
        read_frame(cut, scale=scale)
