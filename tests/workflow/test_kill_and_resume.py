"""A study killed during training resumes: finished models stay, MLflow merges."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
from runner import TINY, snakemake, snakemake_command, snakemake_env, write_config

pytestmark = pytest.mark.workflow

RESUMABLE = {**TINY, "model": {**TINY["model"], "epochs": 150}}


def _finished_models(log_text: str) -> set[str]:
    """Models whose train job Snakemake itself reported finished."""
    blocks = re.findall(
        r"rule train:.*?jobid: (\d+).*?wildcards: model=(\d+)", log_text, re.S
    )
    model_of = dict(blocks)
    done = re.findall(r"Finished jobid: (\d+) \(Rule: train\)", log_text)
    return {model_of[j] for j in done if j in model_of}


def _start(workdir, configfile, log):
    return subprocess.Popen(
        snakemake_command(workdir, configfile),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=snakemake_env(),
        start_new_session=True,
    )


def test_killed_run_resumes_without_retraining(tmp_path):
    from mlflow.tracking import MlflowClient

    configfile = write_config(tmp_path, RESUMABLE)
    models = tmp_path / "results/models"
    resume = tmp_path / "results/.resume/models"
    log_path = tmp_path / "first.log"
    log = log_path.open("w")
    process = _start(tmp_path, configfile, log)
    finished, deadline = {}, time.monotonic() + 600
    try:
        while time.monotonic() < deadline and process.poll() is None:
            done = _finished_models(log_path.read_text())
            running = {p.parent.name for p in resume.glob("*/last.ckpt")} - done
            if done and running:
                finished = {
                    m: (models / m / "predictions.h5").stat().st_mtime_ns for m in done
                }
                break
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()
    if not finished:
        pytest.fail("the run ended before a model was caught mid-training")
    interrupted = {p.parent.name for p in resume.glob("*/last.ckpt")}
    # A killed Snakemake leaves its lock behind; --unlock is the documented step.
    assert snakemake(tmp_path, configfile, "--unlock").returncode == 0
    result = snakemake(tmp_path, configfile, "--rerun-incomplete")
    assert result.returncode == 0, result.stdout[-4000:]
    for m, mtime in finished.items():
        path = models / m / "predictions.h5"
        assert path.stat().st_mtime_ns == mtime, f"model {m} was trained again"
    logs = {
        m: (tmp_path / f"results/logs/train/{m}.log").read_text() for m in interrupted
    }
    assert any("resuming from" in text for text in logs.values())
    assert not list(resume.glob("*/last.ckpt"))
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/results/mlflow.db")
    experiment = client.get_experiment_by_name("thermia")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    kinds = [r.data.tags.get("thermia.kind") for r in runs]
    assert kinds.count("study") == 1
    assert kinds.count("model") == 3
    parent = next(r for r in runs if r.data.tags["thermia.kind"] == "study")
    for run in runs:
        if run.data.tags["thermia.kind"] == "model":
            assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert run.info.status == "FINISHED"
