"""The MLflow UI, rendered by headless Chromium, lists the study's runs."""

from __future__ import annotations

import re
import urllib.parse

import daemons
import pytest
from test_mlflow_server import search_runs, tags

pytestmark = pytest.mark.workflow

PNG = b"\x89PNG\r\n\x1a\n"


def text_of(dom: str) -> str:
    """The page's text: the DOM with every tag removed."""
    return re.sub(r"<[^>]+>", "", dom)


def test_ui_lists_runs_and_serves_the_roc_plot(tracked_run):
    daemons.require("chromium")
    workdir, _, server = tracked_run
    runs = search_runs(server)
    experiment_id = runs[0]["info"]["experiment_id"]
    parent = next(r for r in runs if tags(r)["thermia.kind"] == "study")
    loss = next(r for r in runs if tags(r).get("thermia.attack") == "loss")
    folder = daemons.service_folder("chromium")
    screenshot = workdir / "results/mlflow_ui.png"

    # The runs table: the study's parent run, its children folded under it.
    page = text_of(
        daemons.chromium_render(
            f"{server.url}/#/experiments/{experiment_id}/runs", folder, screenshot
        )
    )
    assert parent["info"]["run_name"] in page
    assert f"{len(runs)} matching runs" in page
    assert screenshot.read_bytes().startswith(PNG)

    # A child run's page names the run and its parent.
    page = text_of(
        daemons.chromium_render(
            f"{server.url}/#/experiments/{experiment_id}/runs/{loss['info']['run_id']}",
            folder,
        )
    )
    assert "attack-loss" in page
    assert parent["info"]["run_name"] in page
    assert "unit/auc" in page

    query = urllib.parse.urlencode(
        {"path": "roc.png", "run_uuid": loss["info"]["run_id"]}
    )
    assert server.get(f"get-artifact?{query}").startswith(PNG)
