"""Tests of atomic file output."""

from __future__ import annotations

import logging
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import thermia.io
from thermia.io import atomic_path, deferred_signals


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


@pytest.fixture
def umask():
    """Run a test under umask 0o022, or another it sets with the yielded ``os.umask``.

    The umask the test started with is restored afterwards.
    """
    previous = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(previous)


@pytest.mark.parametrize(
    ("mask", "mode"),
    [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
    ids=["022", "077", "002"],
)
def test_output_mode_follows_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    (tmp_path / "plain.txt").write_text("done")
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert target.stat().st_mode == (tmp_path / "plain.txt").stat().st_mode


def test_output_mode_replaces_the_old_mode(tmp_path, umask):
    target = tmp_path / "out.txt"
    target.write_text("previous")
    target.chmod(0o600)
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def leftover(target, pid, host=None, random="0123456789"):
    """Create a temporary file of ``target`` as writer ``pid`` on ``host`` left it."""
    host = thermia.io._host(socket.gethostname() if host is None else host)
    path = target.parent / f".{target.name}.{host}.{pid}.{random}.tmp"
    path.write_bytes(b"half written")
    return path


def ended_pid():
    """Return the ID of a child process that has run and been waited for."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_temporary_name_records_host_and_process(tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "node01.cluster_a")
    with atomic_path(tmp_path / "out.txt") as tmp:
        name = tmp.name
    assert name.startswith(f".out.txt.node01%2Ecluster%5Fa.{os.getpid()}.")
    assert name.endswith(".tmp")


def test_leftover_of_an_ended_writer_is_removed(tmp_path, caplog):
    target = tmp_path / "out.txt"
    dead = leftover(target, ended_pid())
    with (
        caplog.at_level(logging.WARNING, logger="thermia.io"),
        atomic_path(target) as tmp,
    ):
        assert not dead.exists()
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert str(dead) in caplog.text


def test_leftover_of_an_ended_writer_on_a_dotted_host_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "node01.cluster.example")
    target = tmp_path / "out.txt"
    dead = leftover(target, ended_pid())
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    assert not dead.exists()


def test_leftovers_of_running_writers_are_kept(tmp_path):
    target = tmp_path / "out.txt"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine = leftover(target, os.getpid())
        childs = leftover(target, child.pid)
        with atomic_path(target) as tmp:
            tmp.write_text("done")
        assert mine.exists()
        assert childs.exists()
    finally:
        child.kill()
        child.wait()
    assert target.read_text() == "done"


def test_leftover_from_another_host_is_kept_and_named_once(tmp_path, caplog):
    target = tmp_path / "out.txt"
    other = leftover(target, ended_pid(), host=f"other-{socket.gethostname()}")
    with caplog.at_level(logging.WARNING, logger="thermia.io"):
        for _ in range(2):
            with atomic_path(target) as tmp:
                tmp.write_text("done")
    assert other.exists()
    assert caplog.text.count(str(other)) == 1
    assert target.read_text() == "done"


def test_leftover_is_never_mistaken_across_targets_and_hosts(tmp_path, monkeypatch):
    # ".a.node01.cluster.<pid>..." could be target "a" written on host
    # "node01.cluster", or target "a.node01" written on host "cluster".
    monkeypatch.setattr(socket, "gethostname", lambda: "node01.cluster")
    other = leftover(tmp_path / "a.node01", ended_pid(), host="cluster")
    near = leftover(tmp_path / "a.b", ended_pid())
    with atomic_path(tmp_path / "a") as tmp:
        tmp.write_text("done")
    assert other.exists()
    assert near.exists()


def test_leftover_on_a_host_without_a_name_of_its_own_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "localhost")
    target = tmp_path / "out.txt"
    dead = leftover(target, ended_pid())
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    assert dead.exists()


def test_leftover_of_an_earlier_version_is_kept_and_named_once(tmp_path, caplog):
    target = tmp_path / "out.txt"
    earlier = tmp_path / ".out.txt.9r58l8sk.tmp"
    earlier.write_bytes(b"half written")
    with caplog.at_level(logging.WARNING, logger="thermia.io"):
        for _ in range(2):
            with atomic_path(target) as tmp:
                tmp.write_text("done")
    assert earlier.exists()
    assert caplog.text.count(str(earlier)) == 1


def test_unrelated_hidden_files_are_kept(tmp_path):
    target = tmp_path / "out.txt"
    kept = [tmp_path / name for name in (".out.txt.tmp", ".out.txt.notes.tmp")]
    for path in kept:
        path.write_text("not ours")
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    assert all(path.exists() for path in kept)


WRITER = """
import sys, time
from thermia.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half written")
    print(tmp, flush=True)
    time.sleep(60)
"""


def test_writer_killed_midway_is_cleaned_up_after_it_ends(tmp_path):
    target = tmp_path / "out.txt"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        its_tmp = Path(writer.stdout.readline().strip())
        with atomic_path(target) as tmp:  # while the writer still runs
            tmp.write_text("first")
        assert its_tmp.exists()
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    assert its_tmp.exists()  # SIGKILL gave it no chance to clean up
    with atomic_path(target) as tmp:
        tmp.write_text("second")
    assert not its_tmp.exists()
    assert target.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_deferred_signals_wait_for_a_check():
    with pytest.raises(KeyboardInterrupt), deferred_signals() as check:
        check()  # nothing received yet
        signal.raise_signal(signal.SIGINT)
        reached = True  # the handler only noted it
        check()
    assert reached
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_deferred_signal_after_the_last_check_is_raised_at_the_end():
    finished = False
    with pytest.raises(KeyboardInterrupt), deferred_signals():
        signal.raise_signal(signal.SIGINT)
        finished = True
    assert finished
