"""The tiny study, run once per test session for the tests that read it."""

from __future__ import annotations

import pytest
from runner import TINY, snakemake, write_config


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny study, run once for every test that reads its outputs."""
    workdir = tmp_path_factory.mktemp("tiny")
    configfile = write_config(workdir, TINY)
    result = snakemake(workdir, configfile)
    assert result.returncode == 0, result.stdout[-5000:]
    return workdir, configfile
