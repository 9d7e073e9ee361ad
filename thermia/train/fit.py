"""Train one model of the membership matrix, then let it predict every frame."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from thermia.io import atomic_path
from thermia.train.model import ThermalClassifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes one training run besides its data."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    channels: int
    seed: int
    threads: int = 1


@dataclass(frozen=True)
class FitResult:
    model: ThermalClassifier
    logits: np.ndarray  # (n_frames, n_classes) float32, every frame of the dataset
    history: list[dict[str, float]]  # one entry per epoch


class _EpochLog(pl.Callback):
    def __init__(self, on_epoch: Callable[[int, dict[str, float]], None] | None):
        self.on_epoch = on_epoch
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        self.history.append(metrics)
        if self.on_epoch is not None:
            self.on_epoch(trainer.current_epoch, metrics)


def predict_logits(
    model: torch.nn.Module, inputs: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """Return the logits of ``inputs`` ``(n, h, w)`` as ``(n, n_classes)``."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            x = torch.from_numpy(inputs[start : start + batch_size])[:, None]
            out.append(model(x).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def fit_and_predict(
    inputs: np.ndarray,
    labels: np.ndarray,
    train_mask: np.ndarray,
    n_classes: int,
    settings: TrainSettings,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train on the frames where ``train_mask`` is True; predict all frames.

    ``inputs`` is ``(n_frames, height, width)`` float32, ``labels`` and
    ``train_mask`` are ``(n_frames,)``. The run is seeded from
    ``settings.seed`` inside a forked RNG state, so the caller's global random
    state is left as it was, and uses ``settings.threads`` torch threads.
    """
    if not train_mask.any():
        raise ValueError("the model holds no frames to train on")
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(settings.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            model = ThermalClassifier(
                n_classes,
                channels=settings.channels,
                learning_rate=settings.learning_rate,
                weight_decay=settings.weight_decay,
            )
            x = torch.from_numpy(np.ascontiguousarray(inputs[train_mask]))[:, None]
            y = torch.from_numpy(labels[train_mask].astype(np.int64))
            loader = DataLoader(
                TensorDataset(x, y),
                batch_size=settings.batch_size,
                shuffle=True,
                generator=torch.Generator().manual_seed(settings.seed),
            )
            epoch_log = _EpochLog(on_epoch)
            trainer = pl.Trainer(
                max_epochs=settings.epochs,
                accelerator="cpu",
                devices=1,
                deterministic=True,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                callbacks=[epoch_log],
            )
            trainer.fit(model, loader)
            logits = predict_logits(model, inputs)
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)
    return FitResult(model=model, logits=logits, history=epoch_log.history)


def unit_balanced_accuracy(
    correct: np.ndarray, frame_unit: np.ndarray, mask: np.ndarray
) -> float:
    """Mean over units of each unit's frame accuracy, on frames where ``mask``."""
    units = frame_unit[mask]
    if len(units) == 0:
        return float("nan")
    totals = np.bincount(units, weights=correct[mask].astype(float))
    counts = np.bincount(units)
    held = counts > 0
    return float(np.mean(totals[held] / counts[held]))


def write_predictions(
    path: str | Path, logits: np.ndarray, attrs: dict[str, object]
) -> None:
    """Write one model's logits for every frame, with its provenance attributes."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["logits"] = logits
        f.attrs.update({k: v for k, v in attrs.items() if v is not None})


def read_logits(path: str | Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["logits"][:]


def settings_dict(settings: TrainSettings) -> dict[str, object]:
    return asdict(settings)
