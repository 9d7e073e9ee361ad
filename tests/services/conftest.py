"""Fixtures that start real services; each is stopped by process group."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The workflow runner is shared with tests/workflow (rootdir-relative imports).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

import daemons
from runner import REPO, TINY, snakemake, write_config

SERVER_TIMEOUT = 90
WORKFLOW_TIMEOUT = 300


@pytest.fixture(scope="session")
def mlflow_server():
    """``mlflow server`` on 127.0.0.1 (SQLite store, local artifact root)."""
    with daemons.mlflow_server(timeout=SERVER_TIMEOUT) as server:
        yield server


@pytest.fixture(scope="session")
def tracked_run(mlflow_server, tmp_path_factory):
    """The tiny study with ``--profile profiles/local``, logging to the server.

    Several training jobs run side by side (``--cores 2``). Its metrics are the
    local reference that the SLURM test compares against.
    """
    workdir = tmp_path_factory.mktemp("tracked")
    configfile = write_config(workdir, TINY)
    result = snakemake(
        workdir,
        configfile,
        "--profile",
        str(REPO / "profiles/local"),
        timeout=WORKFLOW_TIMEOUT,
        env={"MLFLOW_TRACKING_URI": mlflow_server.url},
    )
    assert result.returncode == 0, result.stdout[-5000:]
    return workdir, configfile, mlflow_server
