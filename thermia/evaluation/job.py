"""Evaluation jobs: one attack's scores to metrics and figures, then the summary."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from thermia import tracking
from thermia.attacks.core import AttackResult
from thermia.config import config_hash
from thermia.evaluation import metrics, plots
from thermia.io import atomic_path
from thermia.privacy import display_ids

log = logging.getLogger(__name__)

HEADLINE = (
    "auc",
    "tpr_at_fpr_0.001",
    "tpr_at_fpr_0.01",
    "tpr_at_fpr_0.1",
    "balanced_accuracy",
    "advantage",
)


def frame_weights(unit: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """Weight ``1 / frames`` of each frame's (turn, unit), so units count equally."""
    pairs = turn.astype(np.int64) * (int(unit.max()) + 1) + unit
    _, inverse, counts = np.unique(pairs, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def score_metrics(
    member: np.ndarray,
    score: np.ndarray,
    unit: np.ndarray,
    turn: np.ndarray,
    thresholds: np.ndarray,
    settings: dict[str, Any],
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> dict[str, Any]:
    """Ranking metrics of the pooled scores, threshold metrics per turn.

    AUC and TPR at each FPR rank all scores together; balanced accuracy,
    advantage, precision and recall use each turn's shadow-chosen threshold.
    Intervals resample units (across turns), as :func:`metrics.evaluate` does.
    """
    common = dict(
        groups=unit,
        alphas=tuple(settings["alphas"]),
        sample_weight=sample_weight,
        n_boot=settings["n_bootstrap"],
        ci=settings["ci"],
        seed=seed,
    )
    ranking = metrics.evaluate(member, score, threshold=float(thresholds[0]), **common)
    shifted = score - thresholds[turn]
    decided = metrics.evaluate(member, shifted, threshold=0.0, **common)
    decision_keys = ("balanced_accuracy", "advantage", "precision", "recall")
    out = {k: v for k, v in ranking.items() if not k.startswith(decision_keys)}
    out.update({k: v for k, v in decided.items() if k.startswith(decision_keys)})
    out["threshold"] = [float(t) for t in thresholds]
    return out


def attack_metrics(
    result: AttackResult, settings: dict[str, Any], seed: int
) -> dict[str, dict[str, Any]]:
    """Unit-level and frame-level metrics of one attack's scores.

    Frame-level figures weight each (turn, unit) equally; both levels use the
    thresholds the attack chose on its shadows.
    """
    return {
        "unit": score_metrics(
            result.unit_member,
            result.unit_score,
            result.unit_id,
            result.unit_turn,
            result.unit_threshold,
            settings,
            seed,
        ),
        "frame": score_metrics(
            result.member,
            result.frame_score,
            result.unit,
            result.turn,
            result.frame_threshold,
            settings,
            seed,
            sample_weight=frame_weights(result.unit, result.turn),
        ),
    }


def evaluate_attack(
    *,
    scores_path: str | Path,
    signals_path: str | Path,
    outputs: dict[str, str],
    attack: str,
    settings: dict[str, Any],
    real_unit_ids: bool,
    seed: int,
    config: dict[str, Any],
    uri: str,
    experiment: str,
) -> dict[str, Any]:
    """Write metrics, ROC, histogram and the per-unit risk table of one attack."""
    result = AttackResult.load(str(scores_path))
    with h5py.File(signals_path, "r") as f:
        unit_ids = f["unit_ids"].asstr()[:]
        unit_kind = str(f.attrs["unit"])
        row_hashes = json.loads(f.attrs["row_hash"])
    levels = attack_metrics(result, settings, seed)
    report = {
        "attack": attack,
        "membership_unit": unit_kind,
        "n_turns": len(result.turn_target),
        "aggregation": list(result.aggregation),
        "decisions_source": list(result.decisions_source),
        "chosen_params": {
            k: np.asarray(v).tolist() for k, v in result.chosen_params.items()
        },
        **levels,
    }
    with atomic_path(outputs["metrics"]) as tmp:
        tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    curves = {}
    for level, (y, s) in {
        "unit": (result.unit_member, result.unit_score),
        "frame": (result.member, result.frame_score),
    }.items():
        fpr, tpr, _ = metrics.roc_curve(y, s)
        curves[f"{attack} ({level})"] = (fpr, tpr, report[level]["auc"])
    plots.plot_roc(curves, outputs["roc"], title=f"{attack}: {unit_kind}-level")
    member = result.unit_member.astype(bool)
    plots.plot_score_histograms(
        {attack: (result.unit_score[member], result.unit_score[~member])},
        outputs["histogram"],
    )
    write_risk_table(outputs["risk"], result, unit_ids, real_unit_ids)
    uri = tracking.resolve_uri(uri)
    with tracking.child_run(
        uri,
        experiment,
        config_hash(config),
        kind="attack",
        key=attack,
        name=f"attack-{attack}",
        tags={"thermia.split_hash": ",".join(row_hashes), "thermia.attack": attack},
    ) as run:
        run.log_params(
            {
                "attack": attack,
                "membership_unit": unit_kind,
                "aggregation": ",".join(result.aggregation),
                **{f"params/{k}": v for k, v in result.params.items()},
            }
        )
        run.log_metrics(flat_metrics(report))
        for name in ("metrics", "roc", "histogram", "risk"):
            run.log_artifact(outputs[name])
    return report


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """``{level}/{metric}`` pairs of a metrics report, numbers only."""
    flat = {}
    for level in ("unit", "frame"):
        for key, value in report[level].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                flat[f"{level}/{key}"] = float(value)
    return flat


def write_risk_table(
    path: str | Path, result: AttackResult, unit_ids: np.ndarray, real: bool
) -> None:
    """Write one row per (turn, unit), most exposed first, with pseudonymous ids."""
    names = display_ids(unit_ids[result.unit_id], real=real)
    order = np.argsort(-result.unit_score, kind="stable")
    thresholds = result.unit_threshold[result.unit_turn]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["unit", "turn", "member", "score", "rank", "flagged"])
        for rank, i in enumerate(order, start=1):
            writer.writerow(
                [
                    names[i],
                    int(result.unit_turn[i]),
                    int(result.unit_member[i]),
                    f"{result.unit_score[i]:.6g}",
                    rank,
                    int(result.unit_score[i] >= thresholds[i]),
                ]
            )


def _fmt(value: Any) -> str:
    if value is None:
        return "not resolvable"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_report(
    *,
    metrics_paths: list[str],
    scores_paths: list[str],
    prediction_paths: list[str],
    attacks: list[str],
    summary_path: str | Path,
    roc_path: str | Path,
    config: dict[str, Any],
    uri: str,
    experiment: str,
) -> list[dict[str, Any]]:
    """Write ``summary.csv`` (one row per attack and level) and the joint ROC."""
    models = []
    for p in prediction_paths:
        with h5py.File(p, "r") as f:
            models.append(dict(f.attrs))
    targets = [m for m in models if m["role"] in ("target", "rotating")]
    train_acc = float(np.mean([m["train_accuracy"] for m in targets]))
    heldout_acc = float(np.mean([m["heldout_accuracy"] for m in targets]))
    rows, curves = [], {}
    for attack, mpath, spath in zip(attacks, metrics_paths, scores_paths, strict=True):
        report = json.loads(Path(mpath).read_text())
        for level in ("unit", "frame"):
            values = report[level]
            row = {
                "attack": attack,
                "level": level,
                "membership_unit": report["membership_unit"],
                "target_train_accuracy": f"{train_acc:.4f}",
                "target_heldout_accuracy": f"{heldout_acc:.4f}",
            }
            for key in HEADLINE:
                row[key] = _fmt(values.get(key))
                row[f"{key}_ci"] = (
                    f"[{values[key + '_ci_low']:.4f}, {values[key + '_ci_high']:.4f}]"
                    if values.get(key + "_ci_low") is not None
                    else ""
                )
            row["n_members"] = values["n_members"]
            row["n_non_members"] = values["n_non_members"]
            rows.append(row)
        result = AttackResult.load(spath)
        fpr, tpr, _ = metrics.roc_curve(result.unit_member, result.unit_score)
        curves[attack] = (fpr, tpr, report["unit"]["auc"])
    with atomic_path(summary_path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    unit_kind = rows[0]["membership_unit"]
    plots.plot_roc(curves, roc_path, title=f"Membership inference, {unit_kind} level")
    uri = tracking.resolve_uri(uri)
    client = tracking.parent_handle(uri, experiment, config_hash(config))
    summary = {
        "target/train_accuracy": train_acc,
        "target/heldout_accuracy": heldout_acc,
    }
    for row in rows:
        for key in HEADLINE:
            value = row[key]
            if value != "not resolvable":
                summary[f"{row['attack']}/{row['level']}/{key}"] = float(value)
    client.log_metrics(summary)
    client.set_tags({"thermia.split_hash": ",".join(m["row_hash"] for m in models)})
    client.log_artifact(summary_path)
    client.log_artifact(roc_path)
    log.info("summary of %d attacks written to %s", len(attacks), summary_path)
    return rows
