"""MLflow runs of a study: one parent per configuration, children under it.

The parent run is found again by its configuration hash, and every child by
(parent, kind, key), so re-running a job updates its run instead of adding a
duplicate. Parallel jobs share one SQLite store: every call is retried while
the database is locked, and an error that persists fails the job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from thermia import __version__

log = logging.getLogger(__name__)
T = TypeVar("T")

TAG_CONFIG = "thermia.config_hash"
TAG_KIND = "thermia.kind"
TAG_KEY = "thermia.key"
TAG_PARENT = "mlflow.parentRunId"
RETRIES = 8


def resolve_uri(configured: str) -> str:
    """Return the tracking URI: ``MLFLOW_TRACKING_URI`` wins over the config."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def retry(call: Callable[[], T], what: str) -> T:
    """Run ``call``, retrying with backoff while the store reports it is busy."""
    for attempt in range(RETRIES):
        try:
            return call()
        except Exception as exc:
            text = str(exc).lower()
            busy = "locked" in text or "busy" in text or "unique constraint" in text
            if not busy or attempt == RETRIES - 1:
                raise
            delay = 0.2 * 2**attempt
            log.warning("MLflow store busy during %s; retrying in %.1f s", what, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def git_commit(cwd: str | Path | None = None) -> str:
    """Return the commit of the code (with ``-dirty``), or ``unknown``.

    ``cwd`` defaults to this package's folder: a study runs in its own working
    directory, usually outside the repository that holds the workflow.
    """
    cwd = Path(__file__).resolve().parent if cwd is None else cwd
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def provenance(config_hash: str) -> dict[str, str]:
    """Tags that trace a figure back to what produced it, read at run time."""
    return {
        TAG_CONFIG: config_hash,
        "thermia.version": __version__,
        "thermia.git_commit": git_commit(),
    }


def _experiment_id(client, name: str) -> str:
    experiment = retry(lambda: client.get_experiment_by_name(name), "lookup")
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if client.tracking_uri.startswith("sqlite:///"):
        # Artifacts beside the database, not in the working directory's mlruns/.
        store = Path(client.tracking_uri.removeprefix("sqlite:///")).resolve()
        location = (store.parent / "mlartifacts").as_uri()
    try:
        return retry(
            lambda: client.create_experiment(name, artifact_location=location),
            "create experiment",
        )
    except Exception:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _find(client, experiment_id: str, filters: Mapping[str, str]):
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in filters.items())
    runs = retry(
        lambda: client.search_runs([experiment_id], query, max_results=2), "search"
    )
    return runs[0] if runs else None


def parent_run(
    uri: str, experiment: str, config_hash: str, tags=None, name: str = "study"
) -> str:
    """Find or create the parent run of a configuration; return its id."""
    client = _client(uri)
    experiment_id = _experiment_id(client, experiment)
    found = _find(client, experiment_id, {TAG_CONFIG: config_hash, TAG_KIND: "study"})
    if found is not None:
        return found.info.run_id
    all_tags = {**provenance(config_hash), TAG_KIND: "study", **(tags or {})}
    run = retry(
        lambda: client.create_run(
            experiment_id, tags=all_tags, run_name=f"{name}-{config_hash[:8]}"
        ),
        "create parent",
    )
    retry(lambda: client.set_terminated(run.info.run_id, "FINISHED"), "finish")
    return run.info.run_id


class ChildRun:
    """A handle to log into one child run."""

    def __init__(self, client, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        existing = retry(lambda: self.client.get_run(self.run_id), "get").data.params
        new = [Param(k, str(v)) for k, v in params.items() if k not in existing]
        if new:
            retry(lambda: self.client.log_batch(self.run_id, params=new), "params")

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None):
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), stamp, step or 0)
            for k, v in metrics.items()
            if v is not None
        ]
        if batch:
            retry(lambda: self.client.log_batch(self.run_id, metrics=batch), "metrics")

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        batch = [RunTag(k, str(v)) for k, v in tags.items()]
        retry(lambda: self.client.log_batch(self.run_id, tags=batch), "tags")

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        retry(
            lambda: self.client.log_artifact(self.run_id, str(path), folder),
            "artifact",
        )


@contextlib.contextmanager
def child_run(
    uri: str,
    experiment: str,
    config_hash: str,
    kind: str,
    key: str,
    name: str,
    tags: Mapping[str, Any] | None = None,
) -> Iterator[ChildRun]:
    """Open (find or create) the child run ``(kind, key)`` under the parent.

    The run ends FINISHED when the body succeeds and FAILED when it raises.
    """
    client = _client(uri)
    experiment_id = _experiment_id(client, experiment)
    parent = parent_run(uri, experiment, config_hash)
    filters = {TAG_PARENT: parent, TAG_KIND: kind, TAG_KEY: key}
    found = _find(client, experiment_id, filters)
    all_tags = {**provenance(config_hash), **filters, **(tags or {})}
    if found is None:
        run = retry(
            lambda: client.create_run(experiment_id, tags=all_tags, run_name=name),
            "create child",
        )
        run_id = run.info.run_id
    else:
        run_id = found.info.run_id
        retry(lambda: client.update_run(run_id, status="RUNNING"), "reopen")
    handle = ChildRun(client, run_id)
    handle.set_tags(all_tags)
    try:
        yield handle
    except BaseException:
        retry(lambda: client.set_terminated(run_id, "FAILED"), "fail")
        raise
    retry(lambda: client.set_terminated(run_id, "FINISHED"), "finish")


def open_study(
    out_path: str | Path,
    config: dict[str, Any],
    uri: str,
    experiment: str,
    parent_hash: str | None = None,
    name: str = "study",
) -> str:
    """Create (or migrate) the store and the parent run before any job logs.

    The parent is keyed by ``parent_hash`` (by default the configuration's
    hash). Writes the parent run's id to ``out_path`` as JSON and returns it.
    """
    import json

    from thermia.config import config_hash
    from thermia.io import atomic_path

    uri = resolve_uri(uri)
    digest = parent_hash or config_hash(config)
    run_id = parent_run(uri, experiment, digest, name=name)
    client = _client(uri)
    resolved = json.dumps(config, indent=2, sort_keys=True)
    existing = {a.path for a in retry(lambda: client.list_artifacts(run_id), "list")}
    if "config.json" not in existing:
        retry(lambda: client.log_text(run_id, resolved, "config.json"), "config")
    with atomic_path(out_path) as tmp:
        tmp.write_text(
            json.dumps(
                {"run_id": run_id, "config_hash": digest, "experiment": experiment}
            )
        )
    log.info("study %s logs to %s (run %s)", digest, uri, run_id)
    return run_id


def parent_handle(
    uri: str, experiment: str, config_hash: str, name: str = "study"
) -> ChildRun:
    """A handle to log study-level metrics and artifacts into the parent run."""
    return ChildRun(_client(uri), parent_run(uri, experiment, config_hash, name=name))
