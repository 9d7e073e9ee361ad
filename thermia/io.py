"""Atomic file output: write under a temporary name, then rename into place.

A temporary file is named ``.<target>.<host>.<pid>.<random>.tmp`` and lives
beside its target, so that a writer killed outright (SIGKILL, a power cut, a
batch system's time limit), which has no chance to clean up, leaves a file
that says who wrote it. The next :func:`atomic_path` for the same target
removes such leftovers, but only those written on this host by a process that
is no longer running: a writer's process can be checked only on its own host,
and a results folder may be shared between the nodes of a cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

log = logging.getLogger(__name__)

#: Bytes of a host name kept as they are in a temporary name; every other byte
#: (the dot above all, which would make names ambiguous) is written ``%XX``.
_HOST_BYTES = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"
)

#: Host names that several machines may share; writers on such a host never
#: remove a leftover, since its process may be running on another machine.
_SHARED_HOST_NAMES = frozenset({"", "localhost", "localhost.localdomain"})

#: Hex digits of the random part of a temporary name. It differs from the 8
#: characters that earlier versions used, so the two formats cannot be confused.
_RANDOM_DIGITS = 10

#: What follows ``.<target>.`` in a temporary name (before ``.tmp``).
_CURRENT = re.compile(rf"([^.]+)\.([1-9][0-9]*)\.([0-9a-f]{{{_RANDOM_DIGITS}}})")

#: The same part in names made by earlier versions (``tempfile.mkstemp``), which
#: record no writer.
_EARLIER = re.compile(r"[a-z0-9_]{8}")

#: Leftovers already reported as kept by this process, so each is named once.
_reported: set[Path] = set()


def _host(name: str) -> str:
    """Return host ``name`` as it appears in a temporary name.

    The encoding is one-to-one and never contains a dot, so a temporary name can
    be taken apart from the right whatever the target's and the host's names.
    """
    raw = (name or "localhost").encode("utf-8", "surrogateescape")
    return "".join(chr(b) if b in _HOST_BYTES else f"%{b:02X}" for b in raw)


def _running(pid: int) -> bool:
    """Return whether a process with ID ``pid`` exists on this host.

    A process owned by another user counts as running, and so does any answer
    other than a clear "no such process".
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


def _remove_leftovers(final: Path) -> None:
    """Remove temporary files of ``final`` whose writers died on this host.

    Leftovers of writers on other hosts, and those named by earlier versions
    (which record no writer), are kept and named once in a warning, since
    whether their writer still runs cannot be told from here. Failing to list
    or remove a file is logged and never stops the write.
    """
    prefix = f".{final.name}."
    hostname = socket.gethostname()
    host = _host(hostname)
    # os.kill(pid, 0) tests for a process only on POSIX systems.
    may_remove = os.name == "posix" and hostname not in _SHARED_HOST_NAMES
    try:
        names = [
            entry.name
            for entry in os.scandir(final.parent)
            if entry.name.startswith(prefix) and entry.name.endswith(".tmp")
        ]
    except OSError as error:
        log.warning("could not look for leftovers of %s: %s", final, error)
        return
    for name in names:
        middle = name[len(prefix) : -len(".tmp")]
        leftover = final.parent / name
        match = _CURRENT.fullmatch(middle)
        if match is None:
            if _EARLIER.fullmatch(middle) and leftover not in _reported:
                _reported.add(leftover)
                log.warning(
                    "kept %s, a temporary file of an earlier thermia version; "
                    "delete it by hand once no older thermia job writes %s",
                    leftover,
                    final.name,
                )
            continue
        writer_host, pid = match[1], int(match[2])
        if writer_host != host:
            if leftover not in _reported:
                _reported.add(leftover)
                log.warning(
                    "kept %s, written by process %d on host %s, which cannot be "
                    "checked from here; delete it by hand if that process has ended",
                    leftover,
                    pid,
                    unquote(writer_host, errors="surrogateescape"),
                )
        elif not may_remove or _running(pid):
            log.debug("kept %s: its writer, process %d, may be running", leftover, pid)
        else:
            try:
                leftover.unlink()
            except FileNotFoundError:
                continue  # another writer removed it first
            except OSError as error:
                log.warning("could not remove leftover %s: %s", leftover, error)
                continue
            log.warning(
                "removed %s, left by process %d on this host, which has ended",
                leftover,
                pid,
            )


def _create_temporary(final: Path) -> Path:
    """Create an empty temporary file beside ``final`` and return its path.

    The file is created with mode 0o666, which the kernel narrows by the
    process umask (and by a folder's default ACL) exactly as for
    ``open(path, "w")``; the umask is never read or changed, so this is safe
    while other threads create files.
    """
    stem = f".{final.name}.{_host(socket.gethostname())}.{os.getpid()}."
    for _ in range(100):
        tmp = final.parent / f"{stem}{secrets.token_hex(_RANDOM_DIGITS // 2)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name beside {final}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    If the body raises, the temporary file is removed and ``path`` is left as it
    was, so a failed or interrupted writer never leaves a file that a later step
    could mistake for a finished one. A writer killed outright cannot clean up;
    its temporary file is removed by the next call for the same ``path`` on the
    same host, once that writer's process has ended (see the module notes).

    The output gets the mode that ``open(path, "w")`` would give a new file:
    0o666 less the process umask.

    Parameters
    ----------
    path
        The file to write. Missing parent folders are created.

    Yields
    ------
    Path
        An empty file beside ``path`` for the body to write (or overwrite).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(final)
    tmp = _create_temporary(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def deferred_signals() -> Iterator[Callable[[], None]]:
    """Hold SIGINT and SIGTERM until the body is at a safe point to stop.

    Yields a ``check`` function for the body to call between units of work:
    it raises :class:`KeyboardInterrupt` after a SIGINT, and
    :class:`SystemExit` (status 143) after a SIGTERM, so that the body's own
    cleanup (an :func:`atomic_path` removing its temporary file) runs. Python
    cannot raise an interrupt from inside some callbacks (it prints "Exception
    ignored" and goes on), so a Ctrl-C delivered there would otherwise be
    lost. A signal that arrives after the last ``check`` is raised again, with
    the earlier handlers back in place, when the body ends. Outside the main
    thread, where handlers cannot be set, ``check`` does nothing.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def note(signum: int, _frame) -> None:
        received.append(signum)

    def check() -> None:
        if received:
            signum = received.pop(0)
            log.warning("stopping on signal %s", signal.Signals(signum).name)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, note) for signum in handled}
    try:
        yield check
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        signal.raise_signal(received[0])
