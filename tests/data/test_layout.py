"""Manifests built from folder layouts and patterns."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from thermia.data.ingest import ingest_manifest
from thermia.data.layout import LayoutError, build_manifest
from thermia.data.manifest import read_manifest


def make_frames(root, relatives):
    for i, relative in enumerate(relatives):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 255, (12, 16)).astype(np.uint8)
        Image.fromarray(pixels).save(path)


def read_rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_default_layout_round_trips_through_ingest(tmp_path):
    raw = tmp_path / "raw"
    make_frames(
        raw,
        ["p1/s1/calm/a.png", "p1/s1/calm/b.png", "p2/s7/stress/c.png", ".cache/x.png"],
    )
    (raw / "notes.txt").write_text("not a frame")
    (raw / "p1/s1/calm/Thumbs.db").write_bytes(b"\x00junk that matches the pattern")
    out = build_manifest(raw, out_csv=tmp_path / "manifest.csv")
    rows = read_rows(out)
    assert [r["path"] for r in rows] == [
        "raw/p1/s1/calm/a.png",
        "raw/p1/s1/calm/b.png",
        "raw/p2/s7/stress/c.png",
    ]
    assert (rows[2]["subject"], rows[2]["session"], rows[2]["label"]) == (
        "p2",
        "s7",
        "stress",
    )
    assert read_manifest(out)[1] == ("calm", "stress")
    ingest_manifest(tmp_path / "frames.h5", out)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_pattern_with_named_fields(tmp_path):
    make_frames(tmp_path, ["rec/p3_s2_stress_f0007.png", "rec/p3_s2_calm_f0008.png"])
    out = build_manifest(tmp_path, "rec/{subject}_{session}_{label}_f{frame}.png")
    rows = read_rows(out)
    assert out == tmp_path / "manifest.csv"
    assert list(rows[0]) == ["path", "subject", "session", "label", "frame"]
    assert [(r["label"], r["frame"]) for r in rows] == [
        ("calm", "0008"),
        ("stress", "0007"),
    ]
    assert read_manifest(out)[0][1].frame == 7


def test_bad_patterns_and_places(tmp_path):
    make_frames(tmp_path, ["p1/s1/calm/a.png"])
    with pytest.raises(LayoutError, match="lacks field"):
        build_manifest(tmp_path, "{subject}/{label}/*")
    with pytest.raises(LayoutError, match="no file matches"):
        build_manifest(tmp_path, "{subject}/{session}/{label}/*.tif")
    with pytest.raises(LayoutError, match="must be in"):
        build_manifest(tmp_path, out_csv=tmp_path / "p1" / "m.csv")
    assert not (tmp_path / "manifest.csv").exists()
