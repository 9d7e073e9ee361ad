"""Run the Snakemake workflow on tiny configurations in a temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "data": {
        "synthetic": {
            "n_subjects": 24,
            "frames_per_session": 2,
            "height": 24,
            "width": 32,
        },
    },
    "model": {"input_height": 12, "input_width": 16, "epochs": 2, "channels": 4},
    "split": {"n_models": 3},
    "evaluation": {"n_bootstrap": 50},
}


def write_config(folder: Path, config: dict, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake_command(workdir: Path, configfile: Path, *args: str) -> list[str]:
    """The command line that runs the workflow in ``workdir`` on 2 cores."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--cores",
        "2",
        *args,
    ]


def snakemake_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment with a test salt and without its MLflow URI."""
    environment = {**os.environ, "THERMIA_SALT": "test-salt"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    environment.update(extra or {})
    return environment


def snakemake(
    workdir: Path,
    configfile: Path,
    *args: str,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir``; kill its whole process group on timeout.

    ``MLFLOW_TRACKING_URI`` is dropped from the caller's environment (runs log to
    the study's own store) unless ``env``, added last, sets it again.
    """
    command = snakemake_command(workdir, configfile, *args)
    environment = snakemake_env(env)
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        pytest.fail(f"snakemake timed out after {timeout} s:\n{out[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, None)
