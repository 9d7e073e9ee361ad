"""Attack power of thermia's attacks next to ART's black-box membership attack.

Reads one finished workflow run's ``attack/signals.h5`` (every model's logits on
every frame, and the membership matrix) and takes one target with its shadows:
the view's first turn. For a ``rotate`` run that is model 0 as target and the
others as shadows, the first turn only; the output says so.

On the same members and non-members (the target's evaluation pool) it runs

- every thermia attack that applies to the split scheme (``lira_online`` needs
  shadows that held the target's units), with the workflow's attack settings,
  scored per unit by each attack's own shadow-chosen aggregation;
- ``MembershipInferenceBlackBox`` of the Adversarial Robustness Toolbox (ART),
  fitted on precomputed predictions as a Shokri-style attack is trained: each
  shadow's probability vectors on the frames of its own pool, members against
  non-members, with the true labels; it then scores the target's pool frames,
  and a unit's score is the mean of its frames' member probabilities. One row
  per ART attack model: by default ART's own default network ("nn") and its
  gradient boosting ("gb"). The network adds a term of the prediction to a
  term of the label before its output, so it cannot form the true-class
  confidence (an interaction of the two) and may sit at chance on two classes;
  the verdict compares with the better ART row.

It prints one markdown table (AUC, TPR at 1% and at 0.1% FPR, each with a 95%
bootstrap interval over units from :func:`thermia.evaluation.metrics.evaluate`)
and a verdict line comparing the best thermia attack's TPR at 1% FPR with
ART's, writes the same text to ``<results>/benchmarks/attack_power.md`` and,
with ``--readme``, into the README between
``<!-- thermia:NAME:start -->`` and ``<!-- thermia:NAME:end -->``.

Scores point one way: higher means more likely a member; label 1 = member.

Usage::

    python benchmarks/attack_power.py results [--config config.yaml]
        [--readme README.md --section attack_power_default]

Needs the ``bench`` extra (``adversarial-robustness-toolbox``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thermia.attacks import MembershipView, Turn, run_attack
from thermia.attacks.aggregate import aggregate
from thermia.attacks.core import pool_frames
from thermia.attacks.signals import compute_signals
from thermia.attacks.view import attack_params, read_view
from thermia.config import load_config, validate_config
from thermia.evaluation import metrics
from thermia.io import atomic_path

log = logging.getLogger("attack_power")

ALPHAS = (0.01, 0.001)
ATTACKS = ("shokri", "loss", "lira_offline", "lira_online", "rmia")


def applicable_attacks(view: MembershipView, turn: Turn) -> list[str]:
    """thermia attacks that can run on this turn.

    Online LiRA needs at least one shadow that trained on a unit of the
    target's pool; in a ``disjoint`` split none did.
    """
    pool_units = view.pool[turn.target]
    held = view.keep[list(turn.shadows)][:, pool_units].any()
    return [a for a in ATTACKS if a != "lira_online" or held]


def unit_metrics(
    member: np.ndarray,
    score: np.ndarray,
    unit: np.ndarray,
    threshold: float,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Unit-level metrics with bootstrap intervals over units.

    ``member``, ``score`` and ``unit`` have shape ``(n_units,)``; higher scores
    mean more likely a member.
    """
    return metrics.evaluate(
        member, score, unit, threshold, alphas=ALPHAS, n_boot=n_boot, seed=seed
    )


def thermia_rows(
    view: MembershipView,
    turn: Turn,
    settings: dict[str, Any],
    n_boot: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Run each applicable thermia attack on ``turn``; unit metrics by name."""
    rows = {}
    for name in applicable_attacks(view, turn):
        start = time.perf_counter()
        result = run_attack(
            name, view, [turn], attack_params(name, settings), seed=seed
        )
        rows[name] = unit_metrics(
            result.unit_member,
            result.unit_score,
            result.unit_id,
            float(result.unit_threshold[0]),
            n_boot,
            seed,
        )
        log.info(
            "%s: unit AUC %.3f (aggregation %s) in %.1f s",
            name,
            rows[name]["auc"],
            result.aggregation[0],
            time.perf_counter() - start,
        )
    return rows


def art_scores(
    view: MembershipView, turn: Turn, attack_model: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """ART's black-box attack, trained on the shadows, scoring the target's pool.

    Returns the target's pool frames ``(n_pool_frames,)`` and their member
    probabilities (higher means more likely a member).
    """
    from art.attacks.inference.membership_inference import (
        MembershipInferenceBlackBox,
    )
    from art.estimators.classification import BlackBoxClassifier

    probs = compute_signals(view.logits, view.labels)["probs"].astype(np.float32)
    n_classes = probs.shape[2]

    def no_queries(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("the attack is given precomputed predictions")

    classifier = BlackBoxClassifier(no_queries, (n_classes,), n_classes)
    features, labels, member = [], [], []
    for shadow in turn.shadows:
        frames = pool_frames(view, shadow)
        features.append(probs[shadow, frames])
        labels.append(view.labels[frames])
        member.append(view.keep[shadow, view.units[frames]])
    features = np.concatenate(features)
    labels = np.concatenate(labels)
    member = np.concatenate(member)
    target_frames = pool_frames(view, turn.target)
    # ART's attack network draws its weights and batches from torch's global
    # generator: fork it so the seed here leaves the caller's state alone. One
    # thread: its small batches spend more on thread hand-offs than on work.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            attack = MembershipInferenceBlackBox(
                classifier, input_type="prediction", attack_model_type=attack_model
            )
            if attack_model != "nn":
                attack.attack_model.set_params(random_state=seed)
            attack.fit(
                y=labels[member],
                pred=features[member],
                test_y=labels[~member],
                test_pred=features[~member],
            )
            score = attack.infer(
                None,
                view.labels[target_frames],
                pred=probs[turn.target, target_frames],
                probabilities=True,
            )
    finally:
        torch.set_num_threads(threads)
    return target_frames, np.asarray(score, dtype=np.float64).reshape(-1)


def art_row(
    view: MembershipView, turn: Turn, attack_model: str, n_boot: int, seed: int
) -> dict[str, Any]:
    """Unit-level metrics of ART's attack, frame scores averaged per unit."""
    start = time.perf_counter()
    frames, frame_score = art_scores(view, turn, attack_model, seed)
    unit_id, unit_score = aggregate(frame_score, view.units[frames], "mean")
    row = unit_metrics(
        view.keep[turn.target, unit_id], unit_score, unit_id, 0.5, n_boot, seed
    )
    log.info(
        "ART (%s): unit AUC %.3f in %.1f s",
        attack_model,
        row["auc"],
        time.perf_counter() - start,
    )
    return row


def cell(row: dict[str, Any], key: str) -> str:
    """A metric with its interval, or why it is not reported."""
    if row[key] is None:
        return f"not resolvable at {row['n_non_members']} units"
    low, high = row[f"{key}_ci_low"], row[f"{key}_ci_high"]
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None else ""
    return f"{row[key]:.3f}{interval}"


def _best(rows: dict[str, dict[str, Any]], key: str) -> str:
    """Name of the row with the highest ``key`` (unresolvable rows last)."""
    return max(rows, key=lambda n: -1.0 if rows[n][key] is None else rows[n][key])


def verdict(thermia: dict[str, dict[str, Any]], art: dict[str, dict[str, Any]]) -> str:
    """Best thermia attack's TPR at 1% FPR against ART's best attack model.

    "won" needs ART's figure to be resolvable and above zero and thermia's at
    least twice it; "unresolved" where ART's is zero or not resolvable; "lost"
    otherwise.
    """
    key = "tpr_at_fpr_0.01"
    best, best_art = _best(thermia, key), _best(art, key)
    ours, theirs = thermia[best][key], art[best_art][key]
    if theirs is None or ours is None:
        n = art[best_art]["n_non_members"]
        return (
            "Verdict (TPR at 1% FPR, thermia vs ART): unresolved (not resolvable "
            f"at {n} non-member units)."
        )
    head = (
        f"Verdict (TPR at 1% FPR, best thermia attack {best} vs best ART "
        f"model {best_art}): "
    )
    figures = f"{best} {ours:.3f} vs ART {theirs:.3f}"
    low, high = thermia[best][f"{key}_ci_low"], art[best_art][f"{key}_ci_high"]
    if low is not None and high is not None and low <= high:
        figures += "; their 95% intervals overlap"
    if theirs == 0:
        return head + f"unresolved (ART's TPR is 0; {figures})."
    ratio = ours / theirs
    if ratio >= 2:
        return head + f"won (ratio {ratio:.2f}; {figures})."
    return head + f"lost (ratio {ratio:.2f}, below 2; {figures})."


def render(
    results: Path,
    attrs: dict[str, Any],
    turn: Turn,
    thermia: dict[str, dict[str, Any]],
    art: dict[str, dict[str, Any]],
    n_boot: int,
) -> str:
    """The markdown table, its context lines and the verdict."""
    scheme = str(attrs["scheme"])
    shadows = ", ".join(str(s) for s in turn.shadows)
    scope = f"target model {turn.target}, shadows {shadows}" + (
        " (rotate run: the first turn only)" if scheme == "rotate" else ""
    )
    counts = next(iter(thermia.values()))
    lines = [
        f"Run `{results}`: membership unit **{attrs['unit']}**, scheme "
        f"**{scheme}**, {scope}; {counts['n_members']} member and "
        f"{counts['n_non_members']} non-member units.",
        f"Unit level, 95% bootstrap intervals over units ({n_boot} replicates).",
        "",
        "| attack | AUC | TPR at 1% FPR | TPR at 0.1% FPR |",
        "|---|---|---|---|",
    ]
    named = {f"thermia {n}": r for n, r in thermia.items()}
    for model, row in art.items():
        named[f"ART black-box, {model} (unit mean)"] = row
    for name, row in named.items():
        lines.append(
            f"| {name} | {cell(row, 'auc')} | {cell(row, 'tpr_at_fpr_0.01')} "
            f"| {cell(row, 'tpr_at_fpr_0.001')} |"
        )
    lines += ["", verdict(thermia, art)]
    return "\n".join(lines)


def replace_section(readme: Path, section: str, body: str) -> None:
    """Put ``body`` between the section's markers in ``readme`` (atomically)."""
    start = f"<!-- thermia:{section}:start -->"
    end = f"<!-- thermia:{section}:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(
            f"{readme}: no markers for section {section!r}; add the lines "
            f"{start!r} and {end!r} where the table belongs"
        )
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with atomic_path(readme) as tmp:
        tmp.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results folder of a finished run")
    parser.add_argument(
        "--config",
        type=Path,
        help="configuration whose attack settings to use (default: schema defaults)",
    )
    parser.add_argument("--readme", type=Path, help="README to update")
    parser.add_argument("--section", help="README section name (with --readme)")
    parser.add_argument(
        "--art-models",
        default="nn,gb",
        help="comma-separated ART attack_model_type values, one row each "
        "(default nn,gb: ART's default network and its gradient boosting)",
    )
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if (args.readme is None) != (args.section is None):
        parser.error("--readme and --section go together")
    if args.readme is not None:
        text = args.readme.read_text()
        for marker in ("start", "end"):
            if f"<!-- thermia:{args.section}:{marker} -->" not in text:
                print(  # noqa: T201
                    f"error: {args.readme} has no <!-- thermia:{args.section}:"
                    f"{marker} --> marker; add the start and end markers where "
                    "the table belongs",
                    file=sys.stderr,
                )
                return 2

    view, turns, attrs = read_view(args.results / "attack" / "signals.h5")
    turn = turns[0]
    config = validate_config(None) if args.config is None else load_config(args.config)
    thermia = thermia_rows(view, turn, config["attacks"], args.n_boot, args.seed)
    art = {
        model: art_row(view, turn, model, args.n_boot, args.seed)
        for model in args.art_models.split(",")
    }
    text = render(args.results, attrs, turn, thermia, art, args.n_boot)
    print(text)  # noqa: T201
    out = args.results / "benchmarks" / "attack_power.md"
    with atomic_path(out) as tmp:
        tmp.write_text(text + "\n")
    if args.readme is not None:
        replace_section(args.readme, args.section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
