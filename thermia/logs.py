"""Logging for workflow jobs: plain timestamped lines into the rule's log file."""

from __future__ import annotations

import logging
import sys
import warnings


def setup_job_logging(path: str | None, level: int = logging.INFO) -> None:
    """Send log records, warnings and uncaught errors of this job to ``path``."""
    handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("pytorch_lightning", "lightning", "lightning_fabric", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")

    def log_uncaught(kind, value, traceback):
        logging.getLogger("thermia").error(
            "job failed", exc_info=(kind, value, traceback)
        )
        sys.__excepthook__(kind, value, traceback)

    sys.excepthook = log_uncaught
