"""Manifest parsing and its row-level checks."""

from __future__ import annotations

import os

import pytest

from thermia.data.manifest import (
    ManifestError,
    MembershipUnitWarning,
    fingerprint,
    read_manifest,
    warn_if_unit_finer_than_subject,
)

HEADER = "path,subject,session,label"


def write(tmp_path, *lines, header=HEADER):
    path = tmp_path / "manifest.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_optional_and_extra_columns(tmp_path):
    path = write(
        tmp_path,
        "a.npy,s1,s1a,calm,3,2024-01-01T10:00,npy,yes",
        "sub/b.png,s2,s2a,stress,,,,no",
        header=f"{HEADER},frame,time,format,yawning",
    )
    rows, names = read_manifest(path)
    assert names == ("calm", "stress")
    assert rows[0].line == 2 and rows[0].frame == 3 and rows[0].format == "npy"
    assert rows[0].time == "2024-01-01T10:00"
    assert rows[0].metadata == {"yawning": "yes"}
    assert rows[1].frame == -1 and rows[1].format == "" and rows[1].time == ""
    assert rows[1].path == (tmp_path / "sub" / "b.png").resolve()


def test_labels_fix_order_and_refuse_others(tmp_path):
    path = write(tmp_path, "a.png,s1,x,calm", "b.png,s2,y,stress")
    assert read_manifest(path, labels=["stress", "calm"])[1] == ("stress", "calm")
    with pytest.raises(ManifestError, match="line 3: unknown label 'stress'"):
        read_manifest(path, labels=["calm", "bored"])


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "the manifest has no rows"),
        (["a.png,s1,x,calm", "a.png,s2,y,stress"], "line 3: duplicate of line 2"),
        (["../a.png,s1,x,calm", "b.png,s2,y,stress"], "line 2: path '../a.png' leaves"),
        (["a.png,s1,x,", "b.png,s2,y,stress"], "line 2: empty 'label'"),
        (["a.png,,x,calm", "b.png,s2,y,stress"], "line 2: empty 'subject'"),
        (["a.png,s1,x,calm", "b.png,s2,y,calm"], "only one class"),
        (["a.png,s1,x,calm,extra", "b.png,s2,y,stress"], "line 2: more fields"),
    ],
)
def test_bad_manifests(tmp_path, lines, message):
    with pytest.raises(ManifestError, match=message):
        read_manifest(write(tmp_path, *lines))


def test_class_without_frames(tmp_path):
    path = write(tmp_path, "a.png,s1,x,calm", "b.png,s2,y,stress")
    with pytest.raises(ManifestError, match="no frames of class"):
        read_manifest(path, labels=["calm", "stress", "bored"])


def test_bad_frame_and_format_columns(tmp_path):
    header = f"{HEADER},frame,format"
    bad_frame = write(tmp_path, "a.npy,s1,x,calm,two,", "b,s,y,z,,", header=header)
    with pytest.raises(ManifestError, match="line 2: frame 'two' is not an integer"):
        read_manifest(bad_frame)
    bad_format = write(tmp_path, "a.npy,s1,x,calm,,bmp", "b,s,y,z,,", header=header)
    with pytest.raises(ManifestError, match="line 2: unknown format 'bmp'"):
        read_manifest(bad_format)


def test_missing_columns_and_file(tmp_path):
    with pytest.raises(ManifestError, match="missing column"):
        read_manifest(write(tmp_path, "a.png,s1,x", header="path,subject,session"))
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "absent.csv")


def test_unit_warning():
    assert warn_if_unit_finer_than_subject("subject") is False
    for unit in ("session", "frame"):
        with pytest.warns(MembershipUnitWarning, match=f"unit is '{unit}'"):
            assert warn_if_unit_finer_than_subject(unit) is True


def test_fingerprint_follows_the_manifest_and_its_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"one")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,subject,session,label\na.png,s,x,c\nb.png,s,y,d\n")
    first = fingerprint(manifest)
    assert fingerprint(manifest) == first
    (tmp_path / "b.png").write_bytes(b"two")  # a missing file appears
    second = fingerprint(manifest)
    assert second != first
    os.utime(tmp_path / "a.png", ns=(0, 10**9))  # same bytes, other time
    assert fingerprint(manifest) not in (first, second)
    assert fingerprint(tmp_path / "gone.csv").startswith("unreadable: ")
