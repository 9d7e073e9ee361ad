"""The attack dataset: every model's logits on every frame, with the matrix.

``signals.h5`` gathers what each attack job reads, so that adding an attack
retrains nothing and no attack opens a model::

    logits   (n_models, n_frames, n_classes)   labels (n_frames,)
    units    (n_frames,)   keep, pool (n_models, n_units)   unit_ids (n_units,)
    attrs:   unit, scheme, row_hash (JSON), label_names (JSON)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from thermia.attacks.core import MembershipView, Turn, run_attack, scheme_turns
from thermia.data.splits import frame_units, read_split
from thermia.data.storage import read_meta
from thermia.io import atomic_path

log = logging.getLogger(__name__)
_STR = h5py.string_dtype("utf-8")


def write_view(
    path: str | Path,
    *,
    frames_path: str | Path,
    split_path: str | Path,
    prediction_paths: list[str],
) -> None:
    """Stack each model's predictions (in model order) with the matrix."""
    split = read_split(split_path)
    if len(prediction_paths) != split.n_models:
        raise ValueError(
            f"{split_path} has {split.n_models} models, "
            f"{len(prediction_paths)} prediction files were given"
        )
    meta = read_meta(frames_path)
    unit_ids, frame_unit = frame_units(meta, split.unit)
    logits = []
    hashes = split.row_hashes()
    for m, p in enumerate(prediction_paths):
        with h5py.File(p, "r") as f:
            if int(f.attrs["model_index"]) != m or f.attrs["row_hash"] != hashes[m]:
                raise ValueError(f"{p}: not the predictions of row {m} of {split_path}")
            logits.append(f["logits"][:])
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["logits"] = np.stack(logits)
        f["labels"] = meta.label
        f["units"] = frame_unit
        f["keep"] = split.keep
        f["pool"] = split.pool
        f.create_dataset("unit_ids", data=unit_ids.astype(object), dtype=_STR)
        f.attrs.update(
            unit=split.unit,
            scheme=split.scheme,
            row_hash=json.dumps(split.row_hashes()),
            label_names=json.dumps(list(meta.label_names)),
        )
    log.info(
        "stacked predictions of %d models on %d frames", len(logits), len(meta.label)
    )


def read_view(path: str | Path) -> tuple[MembershipView, list[Turn], dict[str, Any]]:
    """Return the view, its turns and its attributes (plus ``unit_ids``)."""
    with h5py.File(path, "r") as f:
        view = MembershipView(
            logits=f["logits"][:],
            labels=f["labels"][:],
            units=f["units"][:],
            keep=f["keep"][:],
            pool=f["pool"][:],
        )
        attrs = dict(f.attrs)
        attrs["unit_ids"] = f["unit_ids"].asstr()[:]
    return view, scheme_turns(attrs["scheme"], view.n_models), attrs


def attack_params(attack: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Translate the ``attacks`` section of a configuration for one attack."""
    if attack == "shokri":
        return dict(settings["shokri"])
    if attack in ("lira_offline", "lira_online"):
        return {"fixed_variance": settings["lira"]["fixed_variance"]}
    if attack == "rmia":
        rmia = settings["rmia"]
        params = {"gamma": rmia["gamma"], "n_population": rmia["n_population"]}
        return params if rmia["a"] is None else {**params, "a": rmia["a"]}
    return {}


def run_attack_file(
    signals_path: str | Path,
    out_path: str | Path,
    *,
    attack: str,
    settings: dict[str, Any],
    seed: int,
) -> None:
    """Run one attack on a stacked view and write its scores."""
    view, turns, attrs = read_view(signals_path)
    if attack == "lira_online" and attrs["scheme"] == "disjoint":
        raise ValueError(
            f"{signals_path}: online LiRA needs shadows that held the target's units; "
            "use split.scheme 'independent' or 'rotate'"
        )
    result = run_attack(attack, view, turns, attack_params(attack, settings), seed)
    result.save(str(out_path))
    log.info(
        "%s: scored %d frames over %d turn(s)",
        attack,
        len(result.frame_score),
        len(turns),
    )
