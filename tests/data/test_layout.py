"""Manifests built from folder layouts and patterns."""

from __future__ import annotations

import csv
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from thermia.cli import main
from thermia.data.ingest import ingest_manifest
from thermia.data.layout import LayoutError, build_manifest
from thermia.data.manifest import read_manifest


def make_frames(root, relatives):
    for i, relative in enumerate(relatives):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 255, (12, 16)).astype(np.uint8)
        Image.fromarray(pixels).save(path, format="PNG")


FILES = Path(__file__).parent / "files"


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
    with pytest.raises(LayoutError, match="'path' holds the file"):
        build_manifest(tmp_path, "{subject}/{session}/{label}/{path}")
    with pytest.raises(LayoutError, match=r"a\.png': the \{format\} part 'png'"):
        build_manifest(tmp_path, "{subject}/{session}/{label}/*.{format}")
    with pytest.raises(LayoutError, match="no file matches"):
        build_manifest(tmp_path, "{subject}/{session}/{label}/*.tif")
    with pytest.raises(LayoutError, match="must be in"):
        build_manifest(tmp_path, out_csv=tmp_path / "p1" / "m.csv")
    with pytest.raises(LayoutError, match=r"nowhere: folder not found"):
        build_manifest(tmp_path / "nowhere")
    with pytest.raises(LayoutError, match=r"a\.png: not a folder"):
        build_manifest(tmp_path / "p1/s1/calm/a.png")
    with pytest.raises(LayoutError, match="is a folder"):
        build_manifest(tmp_path, out_csv=tmp_path)
    assert not (tmp_path / "manifest.csv").exists()


def test_missing_root_from_the_command_line(tmp_path, caplog):
    out = tmp_path / "m.csv"
    assert main(["make-manifest", str(tmp_path / "raw"), "--out", str(out)]) == 2
    assert "raw: folder not found" in caplog.text
    assert not out.exists()


def test_odd_layout_makes_a_manifest_that_ingest_accepts(tmp_path, caplog):
    """Links, stray files and odd names: what is written, ingest reads."""
    caplog.set_level(logging.INFO)
    raw = tmp_path / "raw"
    calm, stress = raw / "p1/s1/calm", raw / "p2/s1/stress"
    calm.mkdir(parents=True)
    stress.mkdir(parents=True)
    shutil.copy(FILES / "seek_ffc_calibrated.png", calm / "fr 0 é.png")
    with Image.open(FILES / "seek_ffc_calibrated.png") as image:
        ImageOps.mirror(image).save(stress / "b.png")
    outside = tmp_path / "elsewhere" / "p3" / "s1" / "calm"
    make_frames(outside, ["c.png"])
    (calm / "c.png").symlink_to(outside / "c.png")  # file link out of raw
    (raw / "p3").symlink_to(tmp_path / "elsewhere" / "p3")  # folder link out
    (calm / "again.png").symlink_to("fr 0 é.png")  # second name of a file
    (raw / "p1" / "latest").symlink_to("s1")  # second name of a folder
    (raw / "p1" / "up").symlink_to("..")  # a loop through folders
    (calm / "gone.png").symlink_to("nothing.png")
    (calm / "loop.png").symlink_to("loop.png")
    make_frames(raw, [f"p1/s1/calm/extra/f{i}.png" for i in range(7)])  # too deep
    (stress / "notes.txt").write_text("not a frame")
    make_frames(raw, [".trash/p9/s9/calm/x.png", "p2/_old/calm/y.png"])  # hidden
    out = raw / "manifest.csv"

    assert main(["make-manifest", str(raw), "--out", str(out)]) == 0

    assert [r["path"] for r in read_rows(out)] == [
        "p1/s1/calm/fr 0 é.png",
        "p2/s1/stress/b.png",
    ]
    log = caplog.text
    leaving = "left out 2 link(s) that lead out of the manifest's folder"
    assert leaving in log
    assert f"'p3' -> '{tmp_path / 'elsewhere' / 'p3'}'" in log
    assert f"'p1/s1/calm/c.png' -> '{outside / 'c.png'}'" in log
    assert "left out 3 second name(s)" in log
    assert "'p1/latest' (same folder as 'p1/s1')" in log
    assert "'p1/up' (same folder as '.')" in log
    assert "'p1/s1/calm/again.png' (same file as 'p1/s1/calm/fr 0 é.png')" in log
    broken = "left out 2 broken link(s): 'p1/s1/calm/gone.png', 'p1/s1/calm/loop.png'"
    assert broken in log
    assert "left out 7 file(s) not matching the pattern" in log
    assert "'p1/s1/calm/extra/f0.png'" in log and "'p1/s1/calm/extra/f4.png'" in log
    assert "'p1/s1/calm/extra/f5.png'" not in log and "and 2 more" in log
    assert "left out 1 file(s) that are not frames: 'p2/s1/stress/notes.txt'" in log
    assert "x.png" not in log and "y.png" not in log

    ingest_manifest(tmp_path / "frames.h5", out)
    assert sorted(raw.glob(".manifest.csv*")) == []  # no temporary file left


def test_links_that_stay_in_the_manifest_folder_are_followed(tmp_path):
    make_frames(tmp_path, ["store/p1/s1/calm/a.png", "store/p2/s1/stress/b.png"])
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "p1").symlink_to(tmp_path / "store/p1")  # leaves raw, not tmp_path
    (raw / "p2").mkdir()
    os.symlink("../../store/p2/s1", raw / "p2/s1")
    out = build_manifest(raw, out_csv=tmp_path / "manifest.csv")
    assert [r["path"] for r in read_rows(out)] == [
        "raw/p1/s1/calm/a.png",
        "raw/p2/s1/stress/b.png",
    ]
    ingest_manifest(tmp_path / "frames.h5", out)
    with pytest.raises(LayoutError, match="no file matches"):
        build_manifest(raw, out_csv=raw / "manifest.csv")  # both links leave raw


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("fr 0 é.jpg", r"'p1/s1/calm/fr 0 é\.jpg': the \{frame\} part 'fr 0 é'"),
        ("-3.jpg", r"'p1/s1/calm/-3\.jpg': the \{frame\} part '-3' is not"),
        ("7.jpg ", r"'p1/s1/calm/7\.jpg ': a manifest path cannot hold"),
    ],
)
def test_a_frame_no_row_can_describe_stops_the_build(tmp_path, caplog, name, problem):
    make_frames(tmp_path, ["p1/s1/calm/0.jpg", "p2/s1/stress/1.jpg"])
    make_frames(tmp_path / "p1/s1/calm", [name])
    (tmp_path / "p1/s1/calm/2.txt").write_text("left out, not refused")
    out = tmp_path / "manifest.csv"
    pattern = "{subject}/{session}/{label}/{frame}.*"
    with pytest.raises(LayoutError, match="1 matching frame file") as error:
        build_manifest(tmp_path, pattern, out)
    assert error.match(problem)
    args = ["make-manifest", str(tmp_path), "--pattern", pattern, "--out", str(out)]
    assert main(args) == 2
    assert "rename them or change the pattern" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p1", "p2"]


def test_one_label_stops_the_build(tmp_path):
    make_frames(tmp_path, ["p1/s1/calm/a.png", "p2/s1/calm/b.png"])
    with pytest.raises(LayoutError, match=r"all 2 file.*have label 'calm'"):
        build_manifest(tmp_path)
    assert list(tmp_path.glob("*.csv")) == []


def test_the_manifest_is_read_back_before_it_is_kept(tmp_path, monkeypatch):
    make_frames(tmp_path, ["p1/ /calm/a.png", "p2/s1/stress/b.png"])
    with pytest.raises(LayoutError, match=r"'p1/ /calm/a\.png': the \{session\} part"):
        build_manifest(tmp_path)
    monkeypatch.setattr("thermia.data.layout._row_problem", lambda row: None)
    with pytest.raises(LayoutError, match=r"back fails: manifest\.csv, line 2: empty"):
        build_manifest(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p1", "p2"]
