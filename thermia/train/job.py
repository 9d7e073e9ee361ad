"""One training job of the workflow: a row of the membership matrix to a model."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from thermia import tracking
from thermia.config import config_hash
from thermia.data.splits import frame_units, read_split
from thermia.data.storage import read_meta
from thermia.io import atomic_path
from thermia.train.fit import (
    TrainSettings,
    fit_and_predict,
    model_accuracies,
    write_predictions,
)
from thermia.train.inputs import load_inputs

log = logging.getLogger(__name__)


def train_model(
    *,
    frames_path: str | Path,
    inputs_path: str | Path,
    split_path: str | Path,
    model_index: int,
    model_config: dict[str, Any],
    checkpoint_path: str | Path,
    predictions_path: str | Path,
    threads: int,
    config: dict[str, Any],
    uri: str,
    experiment: str,
    snapshot_epochs: tuple[int, ...] = (),
    parent_hash: str | None = None,
    run_kind: str = "model",
    run_key_prefix: str = "",
    resume_dir: str | Path | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, float]:
    """Train model ``model_index`` on its row of ``keep`` and predict every frame.

    Logs parameters, per-epoch and final metrics to the model's MLflow child
    run and returns the final metrics. Accuracies are balanced by unit:
    ``train_accuracy`` over the units the model held, ``heldout_accuracy``
    over the units of its pool that it did not hold. ``snapshot_epochs`` adds
    the logits after those epochs to the predictions file (``snapshots/e{n}``).
    The run is a child of the parent keyed by ``parent_hash`` (by default the
    configuration's hash), found again by ``run_kind`` and its key.
    ``resume_dir`` (outside the rule's outputs, which a rerun deletes) holds
    the per-epoch checkpoint an interrupted job resumes from; it is removed
    once the model is written.
    """
    split = read_split(split_path)
    if not 0 <= model_index < split.n_models:
        raise ValueError(f"model {model_index} is not a row of {split_path}")
    meta = read_meta(frames_path)
    _, frame_unit = frame_units(meta, split.unit)
    held = split.keep[model_index][frame_unit]
    settings = TrainSettings(
        epochs=model_config["epochs"],
        batch_size=model_config["batch_size"],
        learning_rate=model_config["learning_rate"],
        weight_decay=model_config["weight_decay"],
        channels=model_config["channels"],
        seed=int(split.seeds[model_index]),
        threads=threads,
    )
    row_hash = split.row_hashes()[model_index]
    role = str(split.roles[model_index])
    inputs = load_inputs(inputs_path)
    digest = parent_hash or config_hash(config)
    uri = tracking.resolve_uri(uri)
    with tracking.child_run(
        uri,
        experiment,
        digest,
        kind=run_kind,
        key=f"{run_key_prefix}{model_index}-{row_hash}",
        name=f"model-{model_index}-{role}",
        tags={"thermia.role": role, "thermia.split_hash": row_hash, **(tags or {})},
    ) as run:
        run.log_params(
            {
                **{f"train/{k}": v for k, v in vars(settings).items()},
                "model_index": model_index,
                "role": role,
                "n_member_units": int(split.keep[model_index].sum()),
                "n_member_frames": int(held.sum()),
                "membership_unit": split.unit,
                "scheme": split.scheme,
                "input_size": f"{inputs.shape[2]}x{inputs.shape[1]}",
            }
        )
        started = time.perf_counter()
        result = fit_and_predict(
            inputs,
            meta.label,
            held,
            len(meta.label_names),
            settings,
            on_epoch=lambda epoch, metrics: run.log_metrics(metrics, step=epoch),
            snapshot_epochs=snapshot_epochs,
            resume_dir=resume_dir,
        )
        elapsed = time.perf_counter() - started
        train_accuracy, heldout_accuracy = model_accuracies(
            result.logits,
            meta.label,
            frame_unit,
            split.keep[model_index],
            split.pool[model_index],
        )
        final = {
            "train_accuracy": train_accuracy,
            "heldout_accuracy": heldout_accuracy,
            "train_seconds": elapsed,
        }
        final["generalisation_gap"] = (
            final["train_accuracy"] - final["heldout_accuracy"]
        )
        run.log_metrics(final, step=settings.epochs)
        log.info(
            "model %d (%s): train %.3f, held-out %.3f, %.1f s",
            model_index,
            role,
            final["train_accuracy"],
            final["heldout_accuracy"],
            elapsed,
        )
        with atomic_path(checkpoint_path) as tmp:
            torch.save(
                {
                    "state_dict": result.model.state_dict(),
                    "hyper_parameters": dict(result.model.hparams),
                    "settings": vars(settings),
                    "row_hash": row_hash,
                },
                tmp,
            )
        write_predictions(
            predictions_path,
            result.logits,
            {
                "model_index": model_index,
                "role": role,
                "seed": settings.seed,
                "row_hash": row_hash,
                "torch_threads": threads,
                "epochs": settings.epochs,
                **final,
            },
            snapshots=result.snapshots,
        )
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)
    return final
