"""Model inputs: frames resized to the model's input size and standardised.

One ingest serves every input size: this cache is rebuilt per size from the
native-resolution frames file, batch by batch, so the full-resolution set is
never held in memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from thermia.data.storage import iter_frames
from thermia.io import atomic_path

log = logging.getLogger(__name__)


def resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``(n, h, w)`` frames to ``(n, height, width)`` float32.

    Downsampling is antialiased, so a small input size averages pixels
    instead of picking some of them.
    """
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))[:, None]
    if x.shape[-2:] != (height, width):
        x = F.interpolate(
            x,
            size=(height, width),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
    return x[:, 0].numpy()


def dataset_moments(frames_path: str | Path) -> tuple[float, float]:
    """Return the mean and standard deviation of every pixel of a frames file."""
    total, total_sq, count = 0.0, 0.0, 0
    for _, batch in iter_frames(frames_path):
        values = batch.astype(np.float64)
        total += values.sum()
        total_sq += np.square(values).sum()
        count += values.size
    mean = total / count
    sd = float(np.sqrt(max(total_sq / count - mean**2, 0.0)))
    return float(mean), sd if sd > 0 else 1.0


def prepare_inputs(
    frames_path: str | Path,
    out_path: str | Path,
    *,
    height: int,
    width: int,
    normalisation: str = "dataset",
) -> None:
    """Write the frames of ``frames_path`` at ``height`` × ``width``, standardised.

    ``normalisation`` is ``"dataset"`` (one mean and SD for all frames, which
    keeps absolute temperature differences between frames) or ``"frame"``
    (each frame to zero mean and unit SD).
    """
    if normalisation not in ("dataset", "frame"):
        raise ValueError(f"unknown normalisation {normalisation!r}")
    mean, sd = dataset_moments(frames_path) if normalisation == "dataset" else (0, 1)
    with h5py.File(frames_path, "r") as src:
        n_frames = len(src["frames"])
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as f:
        inputs = f.create_dataset("inputs", (n_frames, height, width), dtype=np.float32)
        for start, batch in iter_frames(frames_path):
            x = resize(batch, height, width)
            if normalisation == "frame":
                mu = x.mean(axis=(1, 2), keepdims=True)
                sigma = x.std(axis=(1, 2), keepdims=True)
                # A flat (dead or saturated) frame keeps only resampling noise:
                # map it to zeros instead of blowing that noise up.
                flat = sigma <= 1e-6 * np.maximum(np.abs(mu), 1.0)
                x = np.where(flat, 0.0, (x - mu) / np.where(flat, 1.0, sigma))
                x = x.astype(np.float32)
            else:
                x = (x - mean) / sd
            inputs[start : start + len(x)] = x
        f.attrs.update(
            height=height, width=width, normalisation=normalisation, mean=mean, sd=sd
        )
    log.info("wrote %d inputs of %dx%d to %s", n_frames, width, height, out_path)


def load_inputs(path: str | Path) -> np.ndarray:
    """Return the cached inputs, shape ``(n_frames, height, width)`` float32."""
    with h5py.File(path, "r") as f:
        return f["inputs"][:]
