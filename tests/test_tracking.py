"""Tests of the MLflow run scheme: parent per configuration, children by key."""

from __future__ import annotations

import json

import pytest

from thermia import tracking
from thermia.tracking import (
    TAG_CONFIG,
    TAG_KEY,
    TAG_KIND,
    TAG_PARENT,
    child_run,
    open_study,
    parent_run,
    resolve_uri,
    retry,
)

EXPERIMENT = "thermia-test"


class BodyError(RuntimeError):
    """Stands for any failure inside a job that logs to a child run."""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fresh SQLite store; artifacts land in the same temporary folder."""
    root = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield f"sqlite:///{root}/mlflow.db", root


@pytest.fixture(scope="module")
def client(store):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store[0])


def runs_with(client, tags: dict[str, str]):
    experiment = client.get_experiment_by_name(EXPERIMENT)
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    return client.search_runs([experiment.experiment_id], query)


def test_parent_run_is_found_again(store, client):
    uri, _ = store
    first = parent_run(uri, EXPERIMENT, "hash-a")
    again = parent_run(uri, EXPERIMENT, "hash-a")
    other = parent_run(uri, EXPERIMENT, "hash-b")
    assert first == again
    assert other != first
    assert len(runs_with(client, {TAG_CONFIG: "hash-a", TAG_KIND: "study"})) == 1
    tags = client.get_run(first).data.tags
    assert tags["thermia.version"]
    assert tags["thermia.git_commit"]


def test_child_run_is_reused_and_logs(store, client, tmp_path):
    uri, _ = store
    artifact = tmp_path / "metrics.json"
    artifact.write_text(json.dumps({"auc": 0.5}))
    for attempt in range(2):
        with child_run(uri, EXPERIMENT, "hash-c", "model", "3", "model-3") as run:
            run.log_params({"epochs": 5, "seed": 11})
            run.log_params({"epochs": 5})
            run.log_metrics({"train_loss": 1.0 / (attempt + 1)}, step=attempt)
            run.set_tags({"thermia.role": "shadow"})
            run.log_artifact(artifact, "eval")
            run_id = run.run_id
    found = runs_with(client, {TAG_KIND: "model", TAG_KEY: "3"})
    assert [r.info.run_id for r in found] == [run_id]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"epochs": "5", "seed": "11"}
    assert run.data.metrics["train_loss"] == pytest.approx(0.5)
    history = client.get_metric_history(run_id, "train_loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 0.5)]
    assert run.data.tags["thermia.role"] == "shadow"
    assert run.data.tags[TAG_PARENT] == parent_run(uri, EXPERIMENT, "hash-c")
    assert run.data.tags[TAG_CONFIG] == "hash-c"
    assert [a.path for a in client.list_artifacts(run_id, "eval")] == [
        "eval/metrics.json"
    ]


def test_child_runs_differ_by_key_and_by_parent(store, client):
    uri, _ = store
    ids = set()
    for digest, key in (("hash-d", "0"), ("hash-d", "1"), ("hash-e", "0")):
        with child_run(uri, EXPERIMENT, digest, "model", key, f"model-{key}") as run:
            ids.add(run.run_id)
    assert len(ids) == 3


def test_failing_body_leaves_the_run_failed(store, client):
    uri, _ = store
    with (
        pytest.raises(BodyError),
        child_run(uri, EXPERIMENT, "hash-f", "attack", "loss", "loss") as run,
    ):
        run_id = run.run_id
        raise BodyError("training diverged")
    assert client.get_run(run_id).info.status == "FAILED"
    with child_run(uri, EXPERIMENT, "hash-f", "attack", "loss", "loss") as run:
        assert run.run_id == run_id
    assert client.get_run(run_id).info.status == "FINISHED"


def test_open_study_writes_its_run_and_logs_config_once(store, client, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri, root = store
    calls = []
    log_text = MlflowClient.log_text

    def counted(self, run_id, text, artifact_file):
        calls.append(artifact_file)
        return log_text(self, run_id, text, artifact_file)

    monkeypatch.setattr(MlflowClient, "log_text", counted)
    config = {"seed": 1, "model": {"epochs": 2}, "tracking": {"uri": uri}}
    out = root / "study" / "run.json"
    run_id = open_study(out, config, uri, EXPERIMENT)
    again = open_study(out, config, uri, EXPERIMENT)
    assert again == run_id
    written = json.loads(out.read_text())
    assert written["run_id"] == run_id
    assert written["experiment"] == EXPERIMENT
    assert calls == ["config.json"]
    artifacts = [a.path for a in client.list_artifacts(run_id)]
    assert artifacts == ["config.json"]
    logged = client.download_artifacts(run_id, "config.json", str(root))
    with open(logged) as handle:
        assert json.load(handle) == config


def test_resolve_uri_prefers_the_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_uri("sqlite:///a.db") == "sqlite:///a.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_uri("sqlite:///a.db") == "http://127.0.0.1:5000"


def test_retry_waits_out_a_locked_database(monkeypatch):
    delays = []
    monkeypatch.setattr(tracking.time, "sleep", delays.append)
    attempts = []

    def call():
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "logged"

    assert retry(call, "test") == "logged"
    assert len(attempts) == 3
    assert len(delays) == 2
    assert delays[1] > delays[0] > 0


def test_retry_gives_up_on_a_lock_that_persists(monkeypatch):
    monkeypatch.setattr(tracking.time, "sleep", lambda _: None)
    attempts = []

    def call():
        attempts.append(1)
        raise RuntimeError("database is locked")

    with pytest.raises(RuntimeError, match="locked"):
        retry(call, "test")
    assert len(attempts) == tracking.RETRIES


def test_retry_reraises_other_errors_at_once(monkeypatch):
    monkeypatch.setattr(tracking.time, "sleep", lambda _: pytest.fail("slept"))
    attempts = []

    def call():
        attempts.append(1)
        raise ValueError("no such experiment")

    with pytest.raises(ValueError, match="no such experiment"):
        retry(call, "test")
    assert len(attempts) == 1
