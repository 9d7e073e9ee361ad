"""The tiny study logged to a real ``mlflow server``, read back over REST."""

from __future__ import annotations

import json
import math
import urllib.parse

import pytest
from runner import TINY, snakemake

pytestmark = pytest.mark.workflow

ATTACKS = ["shokri", "loss", "lira_offline", "rmia"]
N_MODELS = TINY["split"]["n_models"]


def search_runs(server) -> list[dict]:
    experiment = json.loads(
        server.get("api/2.0/mlflow/experiments/get-by-name?experiment_name=thermia")
    )["experiment"]
    reply = server.post(
        "runs/search",
        {"experiment_ids": [experiment["experiment_id"]], "max_results": 200},
    )
    return reply.get("runs", [])


def tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def params(run: dict) -> dict[str, str]:
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}


def metrics(run: dict) -> dict[str, float]:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


def artifacts(server, run_id: str) -> set[str]:
    query = urllib.parse.urlencode({"run_id": run_id})
    reply = json.loads(server.get(f"api/2.0/mlflow/artifacts/list?{query}"))
    return {f["path"] for f in reply.get("files", [])}


def expected_metrics(report: dict) -> dict[str, float]:
    """Every number of a metrics.json, keyed as ``{level}/{name}``."""
    expected = {}
    for level in ("unit", "frame"):
        for key, value in report[level].items():
            if type(value) in (int, float):
                expected[f"{level}/{key}"] = float(value)
    return expected


def test_every_run_is_on_the_server(tracked_run):
    _, _, server = tracked_run
    runs = search_runs(server)
    by_kind = {}
    for run in runs:
        by_kind.setdefault(tags(run).get("thermia.kind"), []).append(run)
    assert len(by_kind["study"]) == 1
    assert len(by_kind["model"]) == N_MODELS
    assert len(by_kind["attack"]) == len(ATTACKS)
    parent = by_kind["study"][0]
    parent_id = parent["info"]["run_id"]
    config_hash = tags(parent)["thermia.config_hash"]
    assert "config.json" in artifacts(server, parent_id)
    for run in runs:
        run_tags = tags(run)
        assert run_tags["thermia.config_hash"] == config_hash
        assert run_tags["thermia.git_commit"] not in ("", "unknown")
        assert run["info"]["status"] == "FINISHED"
        if run is not parent:
            assert run_tags["mlflow.parentRunId"] == parent_id
    indices = sorted(int(params(r)["model_index"]) for r in by_kind["model"])
    assert indices == list(range(N_MODELS))
    for run in by_kind["model"]:
        assert params(run)["train/epochs"] == str(TINY["model"]["epochs"])
        assert tags(run)["thermia.split_hash"]
        final = metrics(run)
        assert {"train_accuracy", "heldout_accuracy", "train_loss"} <= set(final)


def test_attack_metrics_equal_metrics_json(tracked_run):
    workdir, _, server = tracked_run
    attack_runs = {
        params(r)["attack"]: r
        for r in search_runs(server)
        if tags(r).get("thermia.kind") == "attack"
    }
    assert sorted(attack_runs) == sorted(ATTACKS)
    for attack, run in attack_runs.items():
        report = json.loads(
            (workdir / f"results/attack/{attack}/metrics.json").read_text()
        )
        expected = expected_metrics(report)
        logged = metrics(run)
        assert set(expected) <= set(logged), attack
        for key, value in expected.items():
            assert math.isclose(logged[key], value, rel_tol=1e-12), (attack, key)
        assert logged["unit/auc"] == report["unit"]["auc"]
        files = artifacts(server, run["info"]["run_id"])
        assert {"metrics.json", "roc.png", "histogram.png", "unit_risk.csv"} <= files


def test_report_holds_figures_and_tables(tracked_run):
    workdir, configfile, server = tracked_run
    report = workdir / "results/report.html"
    result = snakemake(
        workdir,
        configfile,
        "--report",
        str(report),
        timeout=180,
        env={"MLFLOW_TRACKING_URI": server.url},
    )
    assert result.returncode == 0, result.stdout[-3000:]
    text = report.read_text(errors="replace")
    assert "summary.csv" in text
    assert "roc_all.png" in text
