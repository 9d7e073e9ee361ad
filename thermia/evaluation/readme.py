"""Regenerate a README results section from a finished run's outputs.

A section lives between ``<!-- thermia:NAME:start -->`` and
``<!-- thermia:NAME:end -->``; everything between the markers is replaced, so
the figures in the README are always the ones the run wrote.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

from thermia.io import atomic_path

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})", re.M)


def _log_times(logs: Path) -> tuple[datetime, datetime] | None:
    """First and last time stamp in the main workflow's job logs.

    The study's logs (``logs/study/``) are left out: a study run in the same
    results folder is another workflow, at another time.
    """
    stamps = []
    for path in logs.rglob("*.log"):
        if path.relative_to(logs).parts[0] == "study":
            continue
        stamps += [datetime.fromisoformat(s) for s in _STAMP.findall(path.read_text())]
    return (min(stamps), max(stamps)) if stamps else None


def _cell(row: dict, key: str) -> str:
    value, interval = row[key], row.get(f"{key}_ci", "")
    if value == "not resolvable":
        n = row["n_non_members"]
        return f"not resolvable at {n} units"
    if interval:
        low, high = (float(v) for v in interval.strip("[]").split(","))
        interval = f"[{low:.3f}, {high:.3f}]"
    return f"{float(value):.3f} {interval}".strip()


def render_section(results: Path) -> str:
    """Return the markdown table of ``results/report/summary.csv`` and context."""
    with (results / "report" / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    parent = json.loads((results / "tracking" / "parent.json").read_text())
    leakage = json.loads((results / "splits" / "leakage.json").read_text())
    first = rows[0]
    lines = [
        f"Membership unit **{leakage['unit']}**, scheme **{leakage['scheme']}**, "
        f"{leakage['n_models']} models, {leakage['n_units']} units "
        f"(config hash `{parent['config_hash']}`).",
        "Target accuracy, balanced by unit: "
        f"train {float(first['target_train_accuracy']):.3f}, "
        f"held-out {float(first['target_heldout_accuracy']):.3f}.",
        "",
        "| attack | level | AUC [95% CI] | TPR at 0.1% FPR | TPR at 1% FPR "
        "| TPR at 10% FPR | balanced accuracy [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['attack']} | {row['level']} | {_cell(row, 'auc')} | "
            f"{_cell(row, 'tpr_at_fpr_0.001')} | {_cell(row, 'tpr_at_fpr_0.01')} | "
            f"{_cell(row, 'tpr_at_fpr_0.1')} | {_cell(row, 'balanced_accuracy')} |"
        )
    times = _log_times(results / "logs")
    if times is not None:
        minutes = (times[1] - times[0]).total_seconds() / 60
        lines += [
            "",
            f"Workflow wall time: {minutes:.1f} min (first to last job log line).",
        ]
    return "\n".join(lines)


def update_readme(readme: Path, section: str, results: Path) -> None:
    """Replace the named section of ``readme`` with the table of ``results``."""
    text = readme.read_text()
    start = f"<!-- thermia:{section}:start -->"
    end = f"<!-- thermia:{section}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"{readme}: no section markers for {section!r}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    body = (
        render_study(results)
        if section.startswith("study")
        else (render_section(results))
    )
    with atomic_path(readme) as tmp:
        tmp.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def _ci(row: dict, key: str) -> str:
    if row[key] == "":
        return "n/r"
    return (
        f"{float(row[key]):.2f} [{float(row[key + '_ci_low']):.2f}, "
        f"{float(row[key + '_ci_high']):.2f}]"
    )


def _answer(rows: list[dict], factor: str, attack: str) -> str:
    """One line on whether ``factor`` moves ``attack``'s unit-level AUC."""
    chosen = [
        r
        for r in rows
        if r["attack"] == attack
        and r["level"] == "unit"
        and r["factor"] in (factor, "base")
    ]
    chosen.sort(key=lambda r: float(r["auc"]))
    low, high = chosen[0], chosen[-1]
    if f"{float(low['auc']):.2f}" == f"{float(high['auc']):.2f}":
        levels = sorted({r[factor] for r in chosen}, key=_level_order)
        return (
            f"**{factor}**: no effect seen; {attack} AUC {float(low['auc']):.2f} at "
            f"every level tried ({', '.join(levels)})."
        )
    separated = float(high["auc_ci_low"]) > float(low["auc_ci_high"])
    span = (
        f"{attack} AUC {float(low['auc']):.2f} at {factor}={low[factor]} to "
        f"{float(high['auc']):.2f} at {factor}={high[factor]}"
    )
    if separated:
        return f"**{factor}**: measurable effect; {span} (intervals do not overlap)."
    return (
        f"**{factor}**: no measurable effect at this sample size; {span}, "
        "with overlapping intervals."
    )


def _level_order(level: str) -> tuple[int, float | str]:
    """Numbers in numeric order, before other levels in text order."""
    try:
        return (0, float(level))
    except ValueError:
        return (1, level)


def render_study(results: Path) -> str:
    """Markdown tables of ``results/study/summary.csv`` and a per-factor answer."""
    with (results / "study" / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    attacks = list(dict.fromkeys(r["attack"] for r in rows))
    unit = [r for r in rows if r["level"] == "unit"]
    points = list(dict.fromkeys(r["point"] for r in unit))
    lines = [
        "Unit-level AUC [95% CI] per attack; target accuracy balanced by unit "
        "(train / held-out).",
        "",
        "| point | target acc. | " + " | ".join(attacks) + " |",
        "|---|---|" + "---|" * len(attacks),
    ]
    for point in points:
        row = {r["attack"]: r for r in unit if r["point"] == point}
        first = next(iter(row.values()))
        acc = (
            f"{float(first['target_train_accuracy']):.2f} / "
            f"{float(first['target_heldout_accuracy']):.2f}"
        )
        cells = [_ci(row[a], "auc") if a in row else "" for a in attacks]
        lines.append(f"| {point} | {acc} | " + " | ".join(cells) + " |")
    earlier = [r for r in unit if r["point"] == "earlier_study"]
    if earlier:
        lines += [
            "",
            "The earlier study's setting (3 shadows, 20 epochs, 2 classes): "
            "balanced accuracy at the shadow-chosen threshold, the earlier study's "
            "figure, next to what the modern figures say about the same models.",
            "",
            "| attack | balanced accuracy | AUC | TPR at 10% FPR | TPR at 1% FPR |",
            "|---|---|---|---|---|",
        ]
        for r in earlier:
            lines.append(
                f"| {r['attack']} | {_ci(r, 'balanced_accuracy')} | {_ci(r, 'auc')} "
                f"| {_ci(r, 'tpr_at_fpr_0.1')} | {_ci(r, 'tpr_at_fpr_0.01')} |"
            )
    base = {r["attack"]: float(r["auc"]) for r in unit if r["point"] == "base"}
    best = max(base, key=base.get)
    factors = [
        f
        for f in dict.fromkeys(r["factor"] for r in unit)
        if f not in ("base", "earlier_study", "grid")
    ]
    lines += [
        "",
        f"What moves attack power here (strongest attack at the base point: {best}):",
        "",
    ]
    lines += [f"- {_answer(unit, f, best)}" for f in factors]
    lines += ["", "n/r: not resolvable at this number of non-member units."]
    lines += _training_cost(results)
    return "\n".join(lines)


def _training_cost(results: Path) -> list[str]:
    """Measured training seconds per model, by input size (median over models)."""
    import statistics

    import h5py

    size_of, epochs_of = {}, {}
    for path in (results / "study" / "points").glob("*/metrics.json"):
        report = json.loads(path.read_text())
        size_of[report["group"]] = report["settings"]["input_size"]
    seconds: dict[str, list[float]] = {}
    for path in (results / "study" / "models").glob("g*/*/predictions.h5"):
        group = path.parent.parent.name
        if group not in size_of:
            continue
        with h5py.File(path, "r") as f:
            per_epoch = float(f.attrs["train_seconds"]) / int(f.attrs["epochs"])
            epochs_of[group] = int(f.attrs["epochs"])
        seconds.setdefault(size_of[group], []).append(per_epoch)
    if not seconds:
        return []
    lines = [
        "",
        "Measured training time per model and epoch on one CPU core (median over "
        "the study's models; the training set is half of the units):",
        "",
        "| input size | seconds per epoch | models |",
        "|---|---|---|",
    ]
    for size in sorted(seconds, key=lambda v: int(v.split("x")[0])):
        values = seconds[size]
        lines.append(f"| {size} | {statistics.median(values):.2f} | {len(values)} |")
    return lines
