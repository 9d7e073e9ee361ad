"""Train one model of the membership matrix, then let it predict every frame."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
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
    snapshots: dict[int, np.ndarray]  # epoch -> (n_frames, n_classes) logits


class _EpochLog(pl.Callback):
    """Record each epoch's metrics; predict every frame at snapshot epochs."""

    def __init__(
        self,
        on_epoch: Callable[[int, dict[str, float]], None] | None,
        inputs: np.ndarray,
        snapshot_epochs: set[int],
    ):
        self.on_epoch = on_epoch
        self.inputs = inputs
        self.snapshot_epochs = snapshot_epochs
        self.history: list[dict[str, float]] = []
        self.snapshots: dict[int, np.ndarray] = {}

    def state_dict(self) -> dict:
        # Kept in resume checkpoints, so a resumed run keeps its earlier
        # snapshots and history.
        return {
            "history": self.history,
            "snapshots": {e: torch.from_numpy(v) for e, v in self.snapshots.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state["history"])
        self.snapshots = {int(e): v.numpy() for e, v in state["snapshots"].items()}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        self.history.append(metrics)
        epoch = trainer.current_epoch + 1
        if epoch in self.snapshot_epochs:
            # Prediction draws no random numbers and eval mode freezes the
            # batch-norm statistics, so training continues exactly as without it.
            self.snapshots[epoch] = predict_logits(pl_module, self.inputs)
            pl_module.train()
        if self.on_epoch is not None:
            self.on_epoch(trainer.current_epoch, metrics)


class _RandomState(pl.Callback):
    """Carry the shuffling generator and torch's RNG through resume checkpoints."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> dict:
        return {"loader": self.generator.get_state(), "torch": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["loader"])
        torch.set_rng_state(state["torch"])


class _ResumeCheckpoint(pl.Callback):
    """Write ``last.ckpt`` after every epoch, atomically, for a later resume.

    Listed after the other callbacks, so the epoch's snapshot is in it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        with atomic_path(self.folder / "last.ckpt") as tmp:
            trainer.save_checkpoint(tmp)


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
    snapshot_epochs: Sequence[int] = (),
    resume_dir: str | Path | None = None,
) -> FitResult:
    """Train on the frames where ``train_mask`` is True; predict all frames.

    ``inputs`` is ``(n_frames, height, width)`` float32, ``labels`` and
    ``train_mask`` are ``(n_frames,)``. The run is seeded from
    ``settings.seed`` inside a forked RNG state, so the caller's global random
    state is left as it was, and uses ``settings.threads`` torch threads.
    ``snapshot_epochs`` lists epochs after which every frame is also predicted:
    with a constant learning rate, the model after epoch ``e`` is the model of
    an ``e``-epoch run with the same seed.

    With ``resume_dir``, a checkpoint (weights, optimiser, loop, snapshots and
    random states) is written there after every epoch, and a run that finds one
    continues from it: an interrupted and resumed run ends with the same model
    as an uninterrupted one.
    """
    if any(not 1 <= e <= settings.epochs for e in snapshot_epochs):
        raise ValueError(f"snapshot epochs must lie in 1..{settings.epochs}")
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
            generator = torch.Generator().manual_seed(settings.seed)
            loader = DataLoader(
                TensorDataset(x, y),
                batch_size=settings.batch_size,
                shuffle=True,
                generator=generator,
            )
            epoch_log = _EpochLog(on_epoch, inputs, set(snapshot_epochs))
            callbacks: list[pl.Callback] = [epoch_log, _RandomState(generator)]
            resume_from = None
            if resume_dir is not None:
                callbacks.append(_ResumeCheckpoint(Path(resume_dir)))
                last = Path(resume_dir) / "last.ckpt"
                if last.is_file():
                    resume_from = str(last)
                    log.info("resuming from %s", last)
            trainer = pl.Trainer(
                max_epochs=settings.epochs,
                accelerator="cpu",
                devices=1,
                deterministic=True,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                callbacks=callbacks,
            )
            trainer.fit(model, loader, ckpt_path=resume_from)
            logits = predict_logits(model, inputs)
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)
    return FitResult(
        model=model,
        logits=logits,
        history=epoch_log.history,
        snapshots=epoch_log.snapshots,
    )


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


def model_accuracies(
    logits: np.ndarray,
    labels: np.ndarray,
    frame_unit: np.ndarray,
    keep_row: np.ndarray,
    pool_row: np.ndarray,
) -> tuple[float, float]:
    """Return a model's (train, held-out) accuracy, both balanced by unit.

    ``logits`` is ``(n_frames, n_classes)``; ``keep_row`` and ``pool_row`` are
    the model's rows of the membership matrix, ``(n_units,)``. Held-out
    accuracy covers the units of its pool that it did not hold.
    """
    correct = logits.argmax(axis=1) == labels
    held = keep_row[frame_unit]
    heldout = (pool_row & ~keep_row)[frame_unit]
    return (
        unit_balanced_accuracy(correct, frame_unit, held),
        unit_balanced_accuracy(correct, frame_unit, heldout),
    )


def write_predictions(
    path: str | Path,
    logits: np.ndarray,
    attrs: dict[str, object],
    snapshots: dict[int, np.ndarray] | None = None,
) -> None:
    """Write one model's logits for every frame, with its provenance attributes.

    ``snapshots`` maps an epoch to the logits after it, stored as
    ``snapshots/e{epoch}``.
    """
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["logits"] = logits
        for epoch, values in (snapshots or {}).items():
            f[f"snapshots/e{epoch}"] = values
        f.attrs.update({k: v for k, v in attrs.items() if v is not None})


def read_logits(path: str | Path, epoch: int | None = None) -> np.ndarray:
    """Return a model's final logits, or those after ``epoch`` (a snapshot)."""
    with h5py.File(path, "r") as f:
        if epoch is None:
            return f["logits"][:]
        name = f"snapshots/e{epoch}"
        if name not in f:
            raise KeyError(f"{path}: no snapshot after epoch {epoch}")
        return f[name][:]


def settings_dict(settings: TrainSettings) -> dict[str, object]:
    return asdict(settings)
