"""Tests of atomic file output."""

from __future__ import annotations

import pytest

from thermia.io import atomic_path


class WriterError(RuntimeError):
    """Stands for any failure of the code writing the file."""


def test_success_renames_into_place(tmp_path):
    target = tmp_path / "nested" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp != target
        assert tmp.parent == target.parent
        assert not target.exists()
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_failure_leaves_neither_target_nor_temporary(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(WriterError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise WriterError
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_an_existing_target_intact(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("previous")
    with pytest.raises(WriterError), atomic_path(target) as tmp:
        tmp.write_text("replacement, half written")
        raise WriterError
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_success_replaces_an_existing_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("previous")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
