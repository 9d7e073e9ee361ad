"""``thermia check`` applies the ingest's own validation, without leaving files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from thermia.cli import main


def _frame(path, seed, shape=(12, 16)):
    pixels = np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path)


def _study(tmp_path, rows, **manifest):
    lines = ["path,subject,session,label", *(",".join(r) for r in rows)]
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    config = {
        "data": {
            "source": "manifest",
            "manifest": {"path": str(tmp_path / "manifest.csv"), **manifest},
        }
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


ROWS = [("a.png", "s0", "x", "calm"), ("b.png", "s1", "y", "tense")]


@pytest.fixture
def frames(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    _frame(tmp_path / "a.png", 0)
    _frame(tmp_path / "b.png", 1)
    return tmp_path


def test_good_manifest_passes_and_leaves_nothing(frames, caplog):
    before = sorted(p.name for p in frames.iterdir())
    assert main(["check", "--configfile", _study(frames, ROWS)]) == 0
    assert "2 frames, 2 subjects" in caplog.text
    after = sorted(p.name for p in frames.iterdir())
    assert after == sorted([*before, "manifest.csv", "config.yaml"])


def test_same_frame_under_two_subjects_is_named(frames, caplog):
    (frames / "c.png").write_bytes((frames / "a.png").read_bytes())
    rows = [*ROWS, ("c.png", "s2", "z", "calm")]
    assert main(["check", "--configfile", _study(frames, rows)]) == 2
    assert "line 4" in caplog.text and "same pixels as line 2" in caplog.text


def test_mixed_sizes_need_a_resize_policy(frames, caplog):
    _frame(frames / "c.png", 2, shape=(24, 32))
    rows = [*ROWS, ("c.png", "s2", "z", "calm")]
    assert main(["check", "--configfile", _study(frames, rows)]) == 2
    assert "line 4" in caplog.text
    caplog.clear()
    config = _study(frames, rows, resize_to=[12, 16])
    assert main(["check", "--configfile", config]) == 0


def test_finer_unit_warns(frames, caplog):
    path = _study(frames, ROWS)
    config = yaml.safe_load(Path(path).read_text())
    config["split"] = {"membership_unit": "session"}
    Path(path).write_text(yaml.safe_dump(config))
    assert main(["check", "--configfile", path]) == 0
    assert "finer than 'subject'" in caplog.text
