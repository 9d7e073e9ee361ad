"""The whole DAG on a tiny synthetic study: outputs, MLflow, reruns, bad input."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pytest
from PIL import Image
from runner import TINY, snakemake, write_config

from thermia.data.splits import read_split, row_hash

pytestmark = pytest.mark.workflow

ATTACKS = ["shokri", "loss", "lira_offline", "rmia"]


def test_outputs_exist(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results"
    for path in [
        "report/summary.csv",
        "report/roc_all.png",
        "splits/keep.h5",
        "splits/leakage.json",
        *(f"models/{m}/predictions.h5" for m in range(3)),
        *(f"attack/{a}/{f}" for a in ATTACKS for f in ("metrics.json", "roc.png")),
    ]:
        assert (results / path).is_file(), path
    with h5py.File(results / "models/0/predictions.h5") as f:
        assert f["logits"].shape == (24 * 2 * 2, 2)
    leftovers = [p for p in results.rglob("*.tmp")]
    assert leftovers == []


def test_metrics_are_consistent(tiny_run):
    workdir, _ = tiny_run
    split = read_split(workdir / "results/splits/keep.h5")
    n_non_members = int((split.pool[0] & ~split.keep[0]).sum())
    for attack in ATTACKS:
        report = json.loads(
            (workdir / f"results/attack/{attack}/metrics.json").read_text()
        )
        unit = report["unit"]
        assert 0.0 <= unit["auc"] <= 1.0
        assert unit["auc_ci_low"] <= unit["auc"] <= unit["auc_ci_high"]
        assert unit["n_non_members"] == n_non_members
        # 6 non-member subjects: no FPR level below 1/6 is resolvable.
        assert unit["tpr_at_fpr_0.01"] is None
        assert unit["tpr_at_fpr_0.01_resolvable"] is False


def test_mlflow_holds_the_metrics(tiny_run):
    from mlflow.tracking import MlflowClient

    workdir, _ = tiny_run
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/results/mlflow.db")
    experiment = client.get_experiment_by_name("thermia")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    kinds = [r.data.tags.get("thermia.kind") for r in runs]
    assert kinds.count("study") == 1
    assert kinds.count("model") == 3
    assert kinds.count("attack") == len(ATTACKS)
    parent = next(r for r in runs if r.data.tags["thermia.kind"] == "study")
    assert len(parent.data.tags["thermia.split_hash"].split(",")) == 3
    for run in runs:
        assert (
            run.data.tags["thermia.config_hash"]
            == parent.data.tags["thermia.config_hash"]
        )
        assert run.data.tags["thermia.git_commit"]
        if run.data.tags["thermia.kind"] != "study":
            assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert run.info.status == "FINISHED"
    for run in runs:
        if run.data.tags["thermia.kind"] != "attack":
            continue
        attack = run.data.tags["thermia.attack"]
        report = json.loads(
            (workdir / f"results/attack/{attack}/metrics.json").read_text()
        )
        for level in ("unit", "frame"):
            for key in ("auc", "balanced_accuracy", "tpr_at_fpr_0.1"):
                expected = report[level][key]
                if expected is not None:
                    assert run.data.metrics[f"{level}/{key}"] == pytest.approx(expected)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"metrics.json", "roc.png", "unit_risk.csv"} <= artifacts
    models = [r for r in runs if r.data.tags["thermia.kind"] == "model"]
    split = read_split(workdir / "results/splits/keep.h5")
    for run in models:
        m = int(run.data.params["model_index"])
        assert run.data.tags["thermia.split_hash"] == row_hash(
            split.unit_ids[split.keep[m]]
        )
        history = client.get_metric_history(run.info.run_id, "train_loss")
        assert len(history) == TINY["model"]["epochs"]


def test_no_real_ids_reach_mlflow_or_risk_table(tiny_run):
    workdir, _ = tiny_run
    text = (workdir / "results/attack/loss/unit_risk.csv").read_text()
    assert "S00" not in text  # synthetic subject ids look like S0007
    assert text.splitlines()[1].startswith("u-")


def test_second_invocation_reruns_nothing(tiny_run):
    workdir, configfile = tiny_run
    result = snakemake(workdir, configfile, "--dry-run")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Nothing to be done" in result.stdout, result.stdout[-3000:]


def test_same_seed_same_metrics(tiny_run, tmp_path):
    workdir, _ = tiny_run
    configfile = write_config(tmp_path, TINY)
    result = snakemake(tmp_path, configfile)
    assert result.returncode == 0, result.stdout[-5000:]
    for attack in ATTACKS:
        first = json.loads(
            (workdir / f"results/attack/{attack}/metrics.json").read_text()
        )
        again = json.loads(
            (tmp_path / f"results/attack/{attack}/metrics.json").read_text()
        )
        assert first == again, attack


def test_injected_leak_fails_the_run(tiny_run, tmp_path):
    workdir, configfile = tiny_run
    shutil.copytree(workdir / "results/data", tmp_path / "results/data")
    shutil.copytree(workdir / "results/splits", tmp_path / "results/splits")
    (tmp_path / "results/splits/leakage.json").unlink()
    with h5py.File(tmp_path / "results/splits/keep.h5", "r+") as f:
        keep, pool = f["keep"][:], f["pool"][:]
        unit = int(np.flatnonzero(pool[0])[0])
        keep[1, unit] = True  # a shadow now trains on a unit of the target's pool
        f["keep"][...] = keep
        ids = f["unit_ids"].asstr()[:]
        f["row_hash"][1] = row_hash(ids[keep[1]])
    result = snakemake(tmp_path, configfile, "results/splits/leakage.json")
    assert result.returncode != 0
    assert "holds 1 unit(s) of the target's pool" in result.stdout + _log(tmp_path)
    assert not (tmp_path / "results/splits/leakage.json").exists()


def _log(workdir):
    path = workdir / "results/logs/leakage.log"
    return path.read_text() if path.exists() else ""


def test_misspelt_key_is_named_and_nothing_runs(tmp_path):
    configfile = write_config(tmp_path, {**TINY, "model": {"epoch": 2}})
    result = snakemake(tmp_path, configfile, timeout=120)
    assert result.returncode != 0
    assert "model" in result.stdout and "'epoch' was unexpected" in result.stdout
    assert not (tmp_path / "results").exists()


def test_out_of_range_value_is_named(tmp_path):
    config = {**TINY, "split": {"n_models": 1}}
    result = snakemake(tmp_path, write_config(tmp_path, config), timeout=120)
    assert result.returncode != 0
    assert "split.n_models: 1 is less than the minimum of 2" in result.stdout


def _manifest(folder, rows):
    lines = ["path,subject,session,label"] + [",".join(r) for r in rows]
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def _frames(folder, n):
    (folder / "frames").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 255, (12, 16), dtype=np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"frames/{i}.png")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("frames/missing.png", "s1", "a", "calm"), "line 4: "),
        (("frames/2.png", "s1", "a", "angry"), "unknown label 'angry'"),
    ],
)
def test_bad_manifest_row_is_named_and_leaves_nothing(tmp_path, row, message):
    _frames(tmp_path, 3)
    manifest = _manifest(
        tmp_path,
        [
            ("frames/0.png", "s0", "a", "calm"),
            ("frames/1.png", "s0", "b", "tense"),
            row,
        ],
    )
    config = {
        **TINY,
        "data": {
            "source": "manifest",
            "manifest": {"path": str(manifest), "labels": ["calm", "tense"]},
        },
    }
    result = snakemake(tmp_path, write_config(tmp_path, config), timeout=300)
    assert result.returncode != 0
    log = (tmp_path / "results/logs/ingest.log").read_text()
    assert message in log
    assert not list((tmp_path / "results/data").glob("*"))


def test_changed_frames_or_manifest_rerun_ingest(tmp_path):
    """Replacing a frame file or editing the manifest makes frames.h5 stale."""
    _frames(tmp_path, 4)
    rows = [(f"frames/{i}.png", f"s{i % 2}", f"x{i}", "ab"[i // 2]) for i in range(3)]
    manifest = _manifest(tmp_path, rows)
    data = {"source": "manifest", "manifest": {"path": "manifest.csv"}}
    config = {**TINY, "data": data}
    configfile = write_config(tmp_path, config)
    target = "results/data/frames.h5"
    assert snakemake(tmp_path, configfile, target, timeout=300).returncode == 0

    def planned() -> str:
        result = snakemake(tmp_path, configfile, target, "-n", timeout=120)
        assert result.returncode == 0, result.stdout[-3000:]
        return result.stdout

    assert "Nothing to be done" in planned()
    os.utime(manifest)  # touched, not changed: Snakemake compares its checksum
    assert "Nothing to be done" in planned()
    pixels = np.full((12, 16), 7, dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(tmp_path / "frames/1.png")
    assert "rule ingest:" in planned()
    assert snakemake(tmp_path, configfile, target, timeout=300).returncode == 0
    with h5py.File(tmp_path / target) as f:
        np.testing.assert_array_equal(f["frames"][1], pixels)
    with manifest.open("a") as handle:
        handle.write("frames/3.png,s1,x3,b\n")
    assert "rule ingest:" in planned()


STUDY = {
    **TINY,
    "study": {
        "base": {"n_shadows": 2, "epochs": 2, "input_size": "16x12"},
        "factors": {
            "n_shadows": [1],
            "epochs": [1],
            "input_size": [],
            "unit_fraction": [],
            "n_classes": [],
            "membership_unit": [],
        },
        "earlier_study": {"enabled": False},
        "attacks": ["loss", "lira_offline"],
    },
}


def test_study_points_share_models(tmp_path):
    configfile = write_config(tmp_path, STUDY)
    result = snakemake(tmp_path, configfile, "study")
    assert result.returncode == 0, result.stdout[-5000:]
    # Three points (base, 1 shadow, 1 epoch) read one group of three models:
    # fewer shadows are a subset, fewer epochs a snapshot; nothing trains twice.
    trained = result.stdout.count("rule study_train:")
    assert trained == 3, result.stdout[-3000:]
    groups = {
        json.loads(p.read_text())["group"]
        for p in (tmp_path / "results/study/points").glob("*/metrics.json")
    }
    assert len(groups) == 1
    assert (
        len(list((tmp_path / "results/study/models").glob("*/*/predictions.h5"))) == 3
    )
    summary = (tmp_path / "results/study/summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 3 * 2 * 2  # points x attacks x levels
    for factor in ("n_shadows", "epochs"):
        assert (tmp_path / f"results/study/figures/{factor}.png").stat().st_size > 0
    again = snakemake(tmp_path, configfile, "study", "--dry-run")
    assert "Nothing to be done" in again.stdout
