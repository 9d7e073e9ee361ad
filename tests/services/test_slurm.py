"""The tiny study through a real one-node SLURM cluster with accounting.

munge, MariaDB, slurmdbd, slurmctld and slurmd run on 127.0.0.1 from a
temporary folder. The whole tiny study is submitted with
``--profile profiles/slurm`` (as the user would, with account and partition
filled in). Training is deterministic for a seed and one thread, so the attack
metrics must equal those of the local reference run exactly.
"""

from __future__ import annotations

import json
import os

import daemons
import h5py
import numpy as np
import pytest
import yaml
from runner import REPO, TINY, snakemake, write_config

pytestmark = pytest.mark.workflow

ATTACKS = ["shokri", "loss", "lira_offline", "rmia"]
N_MODELS = TINY["split"]["n_models"]
PROGRAMS = [
    "munged",
    "munge",
    "mariadb-install-db",
    "mariadbd",
    "mariadb",
    "slurmdbd",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "sacct",
    "sacctmgr",
    "scontrol",
]


@pytest.fixture(scope="module")
def cluster():
    daemons.require(*PROGRAMS)
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        reason = "snakemake-executor-plugin-slurm is not installed"
        if daemons.in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    if os.geteuid() != 0:
        reason = "munged and slurmd must be started as root"
        if daemons.in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    with daemons.slurm_cluster(timeout=90) as running:
        yield running


def user_profile(cluster, folder):
    """profiles/slurm with the placeholders filled in, as a user would."""
    folder.mkdir()
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    defaults = profile["default-resources"]
    assert defaults["slurm_account"].startswith("<")
    defaults.update(slurm_account=cluster.account, slurm_partition=cluster.partition)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def test_training_goes_through_sbatch_and_matches_local(cluster, tracked_run, tmp_path):
    reference, _, _ = tracked_run
    workdir = tmp_path / "study"
    workdir.mkdir()
    configfile = write_config(workdir, TINY)
    profile = user_profile(cluster, tmp_path / "profile")
    predictions = [f"results/models/{m}/predictions.h5" for m in range(N_MODELS)]
    result = snakemake(
        workdir,
        configfile,
        "--profile",
        str(profile),
        "--slurm-init-seconds-before-status-checks",
        "5",
        timeout=600,
        env=cluster.env,
    )
    assert result.returncode == 0, result.stdout[-5000:]

    jobs = cluster.jobs()
    assert jobs, "slurmdbd recorded no job"
    assert all(j["State"] == "COMPLETED" for j in jobs), jobs
    assert all(j["Account"] == cluster.account for j in jobs), jobs
    train = [j for j in jobs if "train" in j["Comment"]]
    assert len(train) == 1, jobs  # one submission for the group of 3 models
    steps = [
        s
        for s in cluster.jobs(steps=True)
        if s["JobID"].startswith(train[0]["JobID"] + ".")
        and s["JobID"].split(".")[1].isdigit()
    ]
    assert len(steps) == N_MODELS, steps  # one srun step per model
    assert all(s["State"] == "COMPLETED" for s in steps), steps

    for m in range(N_MODELS):
        with (
            h5py.File(workdir / predictions[m]) as ours,
            h5py.File(reference / predictions[m]) as theirs,
        ):
            np.testing.assert_array_equal(ours["logits"][:], theirs["logits"][:])

    # The whole study ran under SLURM: its metrics equal the local run's.
    assert (workdir / "results/report/summary.csv").is_file()
    for attack in ATTACKS:
        ours = json.loads(
            (workdir / f"results/attack/{attack}/metrics.json").read_text()
        )
        theirs = json.loads(
            (reference / f"results/attack/{attack}/metrics.json").read_text()
        )
        assert ours == theirs, attack
