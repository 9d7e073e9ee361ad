"""Tests of model inputs: resizing and standardisation of the frames file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from thermia.train.inputs import load_inputs, prepare_inputs, resize


def checkerboard(n: int, size: int) -> np.ndarray:
    """``(n, size, size)`` frames of alternating 0 and 1 pixels."""
    board = (np.add.outer(np.arange(size), np.arange(size)) % 2).astype(np.float32)
    return np.repeat(board[None], n, axis=0)


def smooth_frames(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """Frames like a thermal face: a per-frame level, a smooth blob, faint noise."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(-1, 1, height)[:, None]
    cols = np.linspace(-1, 1, width)[None, :]
    out = np.empty((n, height, width), dtype=np.float32)
    for i in range(n):
        level = rng.normal(3000, 200)
        amplitude = rng.uniform(300, 800)
        blob = np.exp(-(rows**2 + cols**2) / rng.uniform(0.2, 0.6))
        out[i] = level + amplitude * blob + rng.normal(0, 5, (height, width))
    return out


def write_native(frames_file, frames: np.ndarray):
    n = len(frames)
    return frames_file(
        frames,
        subject=[f"p{i}" for i in range(n)],
        session=["s0"] * n,
        label=[i % 2 for i in range(n)],
    )


@pytest.mark.parametrize(("height", "width"), [(24, 32), (7, 5), (40, 50)])
def test_resize_gives_the_requested_shape(height, width):
    frames = np.random.default_rng(0).random((3, 20, 30))
    out = resize(frames, height, width)
    assert out.shape == (3, height, width)
    assert out.dtype == np.float32


def test_downsampling_is_antialiased():
    frames = checkerboard(2, 48)
    out = resize(frames, 16, 16)
    # Without antialiasing every third pixel would be picked: values 0 or 1.
    assert np.abs(out - frames.mean()).max() < 0.05


def test_resize_is_identity_at_native_size():
    frames = np.random.default_rng(1).integers(0, 2**14, (4, 12, 16)).astype(np.uint16)
    out = resize(frames, 12, 16)
    np.testing.assert_array_equal(out, frames.astype(np.float32))


def test_dataset_normalisation_at_native_size(frames_file, tmp_path):
    frames = smooth_frames(6, 24, 32, seed=2)
    source = write_native(frames_file, frames.astype(np.uint16))
    out = tmp_path / "inputs.h5"
    prepare_inputs(source, out, height=24, width=32, normalisation="dataset")
    x = load_inputs(out)
    native = frames.astype(np.uint16).astype(np.float64)
    assert x.shape == (6, 24, 32)
    assert abs(x.mean()) < 1e-4
    assert abs(x.std() - 1) < 1e-4
    np.testing.assert_allclose(x, (native - native.mean()) / native.std(), atol=1e-4)
    with h5py.File(out) as f:
        assert f.attrs["mean"] == pytest.approx(native.mean())
        assert f.attrs["sd"] == pytest.approx(native.std())
        assert f.attrs["normalisation"] == "dataset"


def test_dataset_normalisation_after_resizing(frames_file, tmp_path):
    frames = smooth_frames(6, 60, 80, seed=3).astype(np.uint16)
    source = write_native(frames_file, frames)
    out = tmp_path / "inputs.h5"
    prepare_inputs(source, out, height=24, width=32, normalisation="dataset")
    x = load_inputs(out)
    assert abs(x.mean()) < 0.02
    assert abs(x.std() - 1) < 0.02
    # levels between frames survive: their order is that of the native means
    native_order = np.argsort(frames.mean(axis=(1, 2)))
    np.testing.assert_array_equal(np.argsort(x.mean(axis=(1, 2))), native_order)


def test_frame_normalisation(frames_file, tmp_path):
    frames = smooth_frames(5, 30, 40, seed=4).astype(np.uint16)
    source = write_native(frames_file, frames)
    out = tmp_path / "inputs.h5"
    prepare_inputs(source, out, height=15, width=20, normalisation="frame")
    x = load_inputs(out)
    for i in range(5):
        assert abs(x[i].mean()) < 1e-4
        assert abs(x[i].std() - 1) < 1e-3
    with h5py.File(out) as f:
        assert f.attrs["normalisation"] == "frame"


@pytest.mark.parametrize(("height", "width"), [(30, 40), (15, 20)])
def test_frame_normalisation_of_a_constant_frame(frames_file, tmp_path, height, width):
    """A flat frame (a dead or saturated sensor) stays flat, without blowing up."""
    frames = smooth_frames(3, 30, 40, seed=4).astype(np.uint16)
    frames[1] = 1234
    source = write_native(frames_file, frames)
    out = tmp_path / "inputs.h5"
    prepare_inputs(source, out, height=height, width=width, normalisation="frame")
    x = load_inputs(out)
    assert np.isfinite(x).all()
    assert np.ptp(x[1]) < 1e-3, f"flat frame spans {np.ptp(x[1]):.3g} after scaling"


@pytest.mark.parametrize(("height", "width"), [(24, 32), (216, 288)])
def test_small_and_large_input_sizes(frames_file, tmp_path, height, width):
    frames = smooth_frames(3, 60, 80, seed=5).astype(np.uint16)
    source = write_native(frames_file, frames)
    out = tmp_path / "inputs.h5"
    prepare_inputs(source, out, height=height, width=width)
    x = load_inputs(out)
    assert x.shape == (3, height, width)
    assert x.dtype == np.float32
    assert np.isfinite(x).all()


def test_unknown_normalisation_writes_nothing(frames_file, tmp_path):
    source = write_native(frames_file, smooth_frames(2, 8, 8, 0).astype(np.uint16))
    out = tmp_path / "inputs.h5"
    with pytest.raises(ValueError, match="normalisation"):
        prepare_inputs(source, out, height=8, width=8, normalisation="minmax")
    assert not out.exists()
