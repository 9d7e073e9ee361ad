#!/usr/bin/env bash
# CI: the Debian programs the service tests run for real (tests/services):
# munge + SLURM (slurmctld, slurmd, slurmdbd with MariaDB for accounting) and
# headless Chromium for the MLflow UI. Nothing is started here: each test
# starts its own daemons on 127.0.0.1 and stops them by process group.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    munge \
    slurm-wlm \
    slurmdbd \
    mariadb-server \
    chromium
