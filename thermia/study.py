"""The factor study: which settings move attack power, measured with intervals.

A *point* is one setting of the factors (number of shadows, epochs, input
size, share of units, number of classes, membership unit). Points are planned
so that compute is spent once:

- points that differ only in the number of shadows or in epochs share one
  *group* of trained models: a point with ``k`` shadows reads models
  ``0..k`` of the group (row ``m`` of the membership matrix does not depend on
  how many rows were drawn), and a point with ``e`` epochs reads the group's
  snapshot after epoch ``e`` (the learning rate is constant, so that snapshot
  *is* an ``e``-epoch model: ``tests/train/test_fit.py`` checks it bit for bit);
- everything else (input size, share of units, classes, unit) needs its own
  group, and a group is trained once however many points read it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

FACTORS = (
    "n_shadows",
    "epochs",
    "input_size",
    "unit_fraction",
    "n_classes",
    "membership_unit",
)
EARLIER_STUDY = {"n_shadows": 3, "epochs": 20, "n_classes": 2}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Point:
    """One setting of the factors, and where its models come from."""

    name: str  # e.g. "base", "n_shadows=1", "earlier_study"
    factor: str  # the factor this point varies, "base" or "earlier_study"
    settings: dict[str, Any]
    group: str
    attacks: tuple[str, ...]


@dataclass
class Plan:
    """What the study trains (data, splits, groups) and evaluates (points)."""

    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    points: dict[str, Point] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def group_models(self, group: str) -> list[int]:
        return list(range(self.groups[group]["n_models"]))


def _settings(config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Return ``(name, factor, settings)`` for every point of the design."""
    study = config["study"]
    base = dict(study["base"])
    factors = {k: v for k, v in study["factors"].items() if v}
    if config["data"]["source"] != "synthetic" and "n_classes" in factors:
        log.warning(
            "study: the number of classes is fixed by the manifest's labels; "
            "the n_classes factor is skipped"
        )
        factors.pop("n_classes")
    if config["data"]["source"] != "synthetic":
        base["n_classes"] = len(config["data"]["manifest"]["labels"] or [0, 1])
    points = [("base", "base", base)]
    if study["design"] == "factorial":
        names = list(factors)
        levels = [sorted(set(factors[n]) | {base[n]}, key=str) for n in names]
        for combo in itertools.product(*levels):
            settings = {**base, **dict(zip(names, combo, strict=True))}
            label = ",".join(f"{n}={v}" for n, v in zip(names, combo, strict=True))
            points.append((label, "grid", settings))
    else:
        for factor, levels in factors.items():
            for level in levels:
                if level != base[factor]:
                    points.append(
                        (f"{factor}={level}", factor, {**base, factor: level})
                    )
    earlier = study["earlier_study"]
    if earlier["enabled"]:
        settings = {**base, **EARLIER_STUDY, "input_size": earlier["input_size"]}
        if config["data"]["source"] != "synthetic":
            settings["n_classes"] = base["n_classes"]
        points.append(("earlier_study", "earlier_study", settings))
    return points


def _size(text: str) -> tuple[int, int]:
    width, height = map(int, text.split("x"))
    return width, height


def plan_study(config: dict[str, Any]) -> Plan:
    """Plan the study of a validated configuration."""
    plan = Plan()
    points = _settings(config)
    largest = max((_size(s["input_size"]) for _, _, s in points), key=lambda s: s[0])
    scheme = config["split"]["scheme"]
    model = {k: v for k, v in config["model"].items() if k != "epochs"}
    model.pop("input_width")
    model.pop("input_height")
    rotate_models = 1 + max(s["n_shadows"] for _, _, s in points)
    seen: dict[str, str] = {}
    for name, factor, settings in points:
        data = copy.deepcopy(config["data"])
        if data["source"] == "synthetic":
            native = data["synthetic"]
            # Frames at least as large as the largest input size, so that no
            # point's "resolution" is an upsampled smaller frame.
            native["width"] = max(native["width"], largest[0])
            native["height"] = max(native["height"], round(largest[0] * 3 / 4))
            native["n_classes"] = settings["n_classes"]
        data_key = f"d{_digest(data)}"
        plan.data[data_key] = data
        split = {
            "membership_unit": settings["membership_unit"],
            "scheme": scheme,
            "target_fraction": config["split"]["target_fraction"],
            "unit_fraction": settings["unit_fraction"],
        }
        split_key = f"s{_digest([data_key, split])}"
        n_models = rotate_models if scheme == "rotate" else 1 + settings["n_shadows"]
        entry = plan.splits.setdefault(split_key, {**split, "data": data_key})
        entry["n_models"] = max(entry.get("n_models", 2), n_models)
        group_key = f"g{_digest([split_key, settings['input_size'], model])}"
        group = plan.groups.setdefault(
            group_key,
            {
                "data": data_key,
                "split": split_key,
                "size": settings["input_size"],
                "model": model,
                "snapshots": [],
            },
        )
        group["snapshots"] = sorted(set(group["snapshots"]) | {settings["epochs"]})
        group["n_models"] = max(group.get("n_models", 2), n_models)
        attacks = tuple(config["study"]["attacks"])
        if scheme == "disjoint" and "lira_online" in attacks:
            attacks = tuple(a for a in attacks if a != "lira_online")
            plan.skipped.append(f"{name}: lira_online needs scheme independent/rotate")
        key = json.dumps(settings, sort_keys=True)
        if key in seen and factor != "earlier_study":
            plan.skipped.append(f"{name}: same setting as {seen[key]}")
            continue
        seen[key] = name
        plan.points[name] = Point(name, factor, settings, group_key, attacks)
    for group in plan.groups.values():
        group["epochs"] = max(group["snapshots"])
    return plan


def study_hash(config: dict[str, Any]) -> str:
    """Hash of everything that shapes the study's results."""
    return _digest(
        {k: v for k, v in config.items() if k not in ("tracking", "results")}
    )


def point_path(name: str) -> str:
    """A file-system-safe folder name for a point."""
    return name.replace("=", "-").replace(",", "_").replace(".", "p")


def evaluate_point(
    *,
    point: str,
    settings: dict[str, Any],
    factor: str,
    group: str,
    attacks: list[str],
    frames_path: str,
    split_path: str,
    prediction_paths: list[str],
    out_path: str,
    config: dict[str, Any],
    uri: str,
    experiment: str,
) -> dict[str, Any]:
    """Run every attack of one point on its models and write its metrics.

    The point reads models ``0..n_shadows`` of its group, at its epoch.
    """
    import numpy as np

    from thermia import tracking
    from thermia.attacks.core import MembershipView, run_attack, scheme_turns
    from thermia.attacks.view import attack_params
    from thermia.data.splits import frame_units, read_split
    from thermia.data.storage import read_meta
    from thermia.evaluation.job import attack_metrics, flat_metrics
    from thermia.io import atomic_path
    from thermia.train.fit import model_accuracies, read_logits

    split = read_split(split_path)
    meta = read_meta(frames_path)
    _, frame_unit = frame_units(meta, split.unit)
    k = len(prediction_paths)
    logits = np.stack([read_logits(p, settings["epochs"]) for p in prediction_paths])
    view = MembershipView(
        logits, meta.label, frame_unit, split.keep[:k], split.pool[:k]
    )
    turns = scheme_turns(split.scheme, k)
    accuracies = np.array(
        [
            model_accuracies(
                logits[t.target],
                meta.label,
                frame_unit,
                split.keep[t.target],
                split.pool[t.target],
            )
            for t in turns
        ]
    )
    seed = config["seed"]
    evaluation = config["evaluation"]
    results = {}
    for attack in attacks:
        r = run_attack(
            attack, view, turns, attack_params(attack, config["attacks"]), seed
        )
        results[attack] = {
            "aggregation": list(r.aggregation),
            "decisions_source": list(r.decisions_source),
            **attack_metrics(r, evaluation, seed),
        }
        log.info(
            "%s / %s: unit AUC %.3f", point, attack, results[attack]["unit"]["auc"]
        )
    report = {
        "point": point,
        "factor": factor,
        "settings": settings,
        "group": group,
        "scheme": split.scheme,
        "target": {
            "train_accuracy": float(accuracies[:, 0].mean()),
            "heldout_accuracy": float(accuracies[:, 1].mean()),
        },
        "attacks": results,
    }
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    uri = tracking.resolve_uri(uri)
    parent = study_hash(config)
    tracking.parent_run(uri, experiment, parent, name="grid")
    with tracking.child_run(
        uri,
        experiment,
        parent,
        kind="point",
        key=point,
        name=f"point-{point}",
        tags={"thermia.model_group": group, "thermia.factor": factor},
    ) as run:
        run.log_params({f"study/{k}": v for k, v in settings.items()})
        metrics = {f"target/{k}": v for k, v in report["target"].items()}
        for attack, values in results.items():
            metrics.update(
                {f"{attack}/{k}": v for k, v in flat_metrics(values).items()}
            )
        run.log_metrics(metrics)
        run.log_artifact(out_path)
    return report


SUMMARY_METRICS = (
    "auc",
    "tpr_at_fpr_0.001",
    "tpr_at_fpr_0.01",
    "tpr_at_fpr_0.1",
    "balanced_accuracy",
)


def summary_rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per point, attack and level, with each metric and its interval."""
    rows = []
    for report in reports:
        for attack, values in report["attacks"].items():
            for level in ("unit", "frame"):
                metrics = values[level]
                row = {
                    "point": report["point"],
                    "factor": report["factor"],
                    **report["settings"],
                    "attack": attack,
                    "level": level,
                    "target_train_accuracy": round(
                        report["target"]["train_accuracy"], 4
                    ),
                    "target_heldout_accuracy": round(
                        report["target"]["heldout_accuracy"], 4
                    ),
                    "n_non_members": metrics["n_non_members"],
                }
                for key in SUMMARY_METRICS:
                    for suffix in ("", "_ci_low", "_ci_high"):
                        value = metrics.get(key + suffix)
                        row[key + suffix] = "" if value is None else round(value, 4)
                rows.append(row)
    return rows


def _levels(values: list[Any]) -> list[Any]:
    if all(isinstance(v, int | float) for v in values):
        return sorted(set(values))
    order = {
        "32x24": 0,
        "64x48": 1,
        "144x108": 2,
        "288x216": 3,
        "frame": 0,
        "session": 1,
        "subject": 2,
    }
    return sorted(set(values), key=lambda v: (order.get(v, 99), str(v)))


def plot_factor(rows: list[dict[str, Any]], factor: str, path: str) -> None:
    """Metric against the factor's levels, one line per attack, interval bands."""
    from matplotlib.figure import Figure

    from thermia.io import atomic_path

    chosen = [
        r for r in rows if r["level"] == "unit" and r["factor"] in (factor, "base")
    ]
    levels = _levels([r[factor] for r in chosen])
    panels = ("auc", "tpr_at_fpr_0.1", "tpr_at_fpr_0.01", "balanced_accuracy")
    fig = Figure(figsize=(4 * len(panels), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels))
    for ax, metric in zip(axes, panels, strict=True):
        if all(r[metric] == "" for r in chosen):
            ax.text(
                0.5,
                0.5,
                "not resolvable\nat this number of units",
                transform=ax.transAxes,
                ha="center",
                va="center",
            )
        for attack in sorted({r["attack"] for r in chosen}):
            points = {r[factor]: r for r in chosen if r["attack"] == attack}
            xs = [
                i
                for i, level in enumerate(levels)
                if points.get(level, {}).get(metric) != ""
            ]
            if not xs:
                continue
            ys = [points[levels[i]][metric] for i in xs]
            lo = [points[levels[i]][metric + "_ci_low"] for i in xs]
            hi = [points[levels[i]][metric + "_ci_high"] for i in xs]
            (line,) = ax.plot(xs, ys, marker="o", label=attack)
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_xticks(range(len(levels)), [str(v) for v in levels])
        ax.set_xlabel(factor)
        ax.set_title(metric.replace("_", " "))
        if metric in ("auc", "balanced_accuracy"):
            ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[0].legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def write_study_summary(
    *,
    metrics_paths: list[str],
    summary_path: str,
    figure_dir: str,
    factors: list[str],
    config: dict[str, Any],
    uri: str,
    experiment: str,
) -> list[dict[str, Any]]:
    """Write ``summary.csv`` and one figure per factor; log both to MLflow."""
    import csv
    from pathlib import Path

    from thermia import tracking
    from thermia.io import atomic_path

    reports = [json.loads(Path(p).read_text()) for p in metrics_paths]
    rows = summary_rows(reports)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(summary_path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    Path(figure_dir).mkdir(parents=True, exist_ok=True)
    figures = []
    for factor in factors:
        figures.append(str(Path(figure_dir) / f"{factor}.png"))
        plot_factor(rows, factor, figures[-1])
    uri = tracking.resolve_uri(uri)
    handle = tracking.parent_handle(uri, experiment, study_hash(config), "grid")
    handle.log_artifact(summary_path)
    for figure in figures:
        handle.log_artifact(figure, "figures")
    return rows
