"""Manifest CSV files: one row a frame, or one row a file of frames.

Columns:

``path`` (required)
    The frame file, relative to the manifest's folder; a path that leaves the
    folder is refused.
``subject``, ``session`` (required), and the label column (``label`` by default)
    Who was recorded, in which recording, and the class.
``frame`` (optional)
    The frame's index within its recording. For a file that holds several
    frames (``.npy``/``.npz`` stacks, FLIR SEQ, CPTV) it is also the 0-based
    index into the file; left empty, the row stands for every frame of the
    file, numbered 0, 1, ... For a single-frame file it is only recorded.
``time`` (optional)
    A timestamp, kept as text.
``format`` (optional)
    The file's format (see :data:`thermia.data.readers.FORMATS`); empty or
    ``auto`` detects it from the content. An explicit format that contradicts
    the content is an error.

Any other column is kept as per-frame text metadata.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from thermia.data.readers import FORMATS

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("path", "subject", "session")
OPTIONAL_COLUMNS = ("frame", "time", "format")


class ManifestError(ValueError):
    """A manifest, or a row of it, cannot be used."""


class MembershipUnitWarning(UserWarning):
    """The membership unit is finer than a subject: one person may sit on both sides."""


@dataclass(frozen=True)
class ManifestRow:
    """One row of a manifest, checked, with its path resolved."""

    line: int  # line number in the CSV file, header = 1
    path: Path  # resolved, inside the manifest's folder
    subject: str
    session: str
    label: str
    frame: int  # index in the recording; -1 when the column is empty
    time: str = ""
    format: str = ""  # "" means detect from content
    metadata: dict[str, str] = field(default_factory=dict)  # the extra columns


def read_manifest(
    path: str | Path, label_column: str = "label", labels: list[str] | None = None
) -> tuple[list[ManifestRow], tuple[str, ...]]:
    """Read and check a manifest; return its rows and the class names in order.

    Paths are resolved against the manifest's folder and may not leave it.
    ``labels`` fixes the classes and their order; a row with any other label is
    an error. Without it, the classes are the sorted distinct labels. An empty
    manifest, a row with an empty required field, a duplicate row (same file
    and frame), an unknown format and a class without rows are errors naming
    the line.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    root = path.parent.resolve()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in (*REQUIRED_COLUMNS, label_column) if c not in columns]
        if missing:
            raise ManifestError(f"{path}: missing column(s) {', '.join(missing)}")
        extra = [
            c
            for c in columns
            if c not in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, label_column)
        ]
        folders: dict[str, Path] = {}
        rows = [
            _parse_row(path, root, reader.line_num, r, label_column, extra, folders)
            for r in reader
        ]
    if not rows:
        raise ManifestError(f"{path}: the manifest has no rows")
    _check_duplicates(path, rows)
    found = sorted({r.label for r in rows})
    if labels is None:
        names = tuple(found)
        _warn_on_near_labels(path, names)
    else:
        names = tuple(labels)
        for row in rows:
            if row.label not in names:
                raise ManifestError(
                    f"{path}, line {row.line}: unknown label {row.label!r}; "
                    f"expected one of {', '.join(names)}"
                )
    empty = [n for n in names if n not in found]
    if empty:
        raise ManifestError(f"{path}: no frames of class(es) {', '.join(empty)}")
    if len(names) < 2:
        raise ManifestError(
            f"{path}: only one class ({names[0]!r}); a classifier needs at least two"
        )
    return rows, names


def fingerprint(path: str | Path) -> str:
    """A cheap fingerprint of a manifest and the files it names, for reruns.

    SHA-256 of the manifest's bytes and, for each distinct path it names, the
    file's size and modification time (or that it is missing). It reads no
    pixels, so a workflow can recompute it on every run and re-ingest when a
    frame file is replaced or the manifest edited. Nothing is checked here: a
    missing or malformed manifest only changes the fingerprint, and ingest
    reports the problem.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        text = path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    digest.update(text)
    lines = text.decode("utf-8-sig", errors="replace").splitlines()
    named = sorted({row.get("path") or "" for row in csv.DictReader(lines)})
    for name in named:
        try:
            stat = (path.parent / name).stat()
            digest.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{name}\tmissing\n".encode())
    return digest.hexdigest()


def _warn_on_near_labels(path: str | Path, names: tuple[str, ...]) -> None:
    """Warn when labels differ only in case or surrounding spaces ("Stress")."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.strip().casefold(), []).append(name)
    for group in groups.values():
        if len(group) > 1:
            log.warning(
                "%s: labels %s differ only in case or spaces and are taken as "
                "%d classes; set labels to name the classes",
                path,
                ", ".join(map(repr, group)),
                len(group),
            )


def warn_if_unit_finer_than_subject(unit: str) -> bool:
    """Warn when the membership ``unit`` is ``session`` or ``frame``.

    With a unit finer than the subject, frames of one person can be members of
    a model and non-members of it at once, so a high attack score may reflect
    the person rather than the frame. Returns True when it warned.
    """
    if unit == "subject":
        return False
    message = (
        f"membership unit is {unit!r}, finer than 'subject': one subject's frames "
        "can sit on both the member and the non_member side, which inflates "
        "attack scores; prefer unit 'subject' for a privacy claim about people"
    )
    log.warning(message)
    warnings.warn(message, MembershipUnitWarning, stacklevel=2)
    return True


def _parse_row(
    manifest: Path,
    root: Path,
    line: int,
    raw: dict,
    label_column: str,
    extra: list[str],
    folders: dict[str, Path],
) -> ManifestRow:
    where = f"{manifest}, line {line}"
    if None in raw:
        raise ManifestError(f"{where}: more fields than the header has columns")
    values = {}
    for column in (*REQUIRED_COLUMNS, label_column):
        value = (raw.get(column) or "").strip()
        if not value:
            raise ManifestError(f"{where}: empty {column!r}")
        values[column] = value
    resolved = _resolve(root, values["path"], folders)
    if not resolved.is_relative_to(root):
        raise ManifestError(
            f"{where}: path {values['path']!r} leaves the manifest's folder {root}"
        )
    frame_text = (raw.get("frame") or "").strip()
    try:
        frame = int(frame_text) if frame_text else -1
    except ValueError as exc:
        raise ManifestError(f"{where}: frame {frame_text!r} is not an integer") from exc
    if frame_text and frame < 0:
        raise ManifestError(f"{where}: frame {frame} is negative")
    fmt = (raw.get("format") or "").strip().lower()
    if fmt == "auto":
        fmt = ""
    if fmt and fmt not in FORMATS:
        raise ManifestError(
            f"{where}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}"
        )
    return ManifestRow(
        line=line,
        path=resolved,
        subject=values["subject"],
        session=values["session"],
        label=values[label_column],
        frame=frame,
        time=(raw.get("time") or "").strip(),
        format=fmt,
        metadata={c: (raw.get(c) or "").strip() for c in extra},
    )


def _resolve(root: Path, relative: str, folders: dict[str, Path]) -> Path:
    """Resolve ``root / relative``, following links; folders are resolved once."""
    parent, _, name = relative.replace("\\", "/").rpartition("/")
    if parent not in folders:
        folders[parent] = (root / parent).resolve()
    resolved = folders[parent] / name
    if name in ("", ".", "..") or resolved.is_symlink():
        resolved = resolved.resolve()
    return resolved


def _check_duplicates(manifest: Path, rows: list[ManifestRow]) -> None:
    seen: dict[tuple[Path, int], int] = {}
    for row in rows:
        key = (row.path, row.frame)
        if key in seen:
            frame = "" if row.frame < 0 else f", frame {row.frame}"
            raise ManifestError(
                f"{manifest}, line {row.line}: duplicate of line {seen[key]} "
                f"({row.path.name}{frame})"
            )
        seen[key] = row.line
