"""Manifest CSV files: one row a frame, with path, subject, session and label."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

REQUIRED_COLUMNS = ("path", "subject", "session")


class ManifestError(ValueError):
    """A manifest, or a row of it, cannot be used."""


@dataclass(frozen=True)
class ManifestRow:
    line: int  # line number in the CSV file, header = 1
    path: Path  # resolved, inside the manifest's folder
    subject: str
    session: str
    label: str
    frame: int


def read_manifest(
    path: str | Path, label_column: str = "label", labels: list[str] | None = None
) -> tuple[list[ManifestRow], tuple[str, ...]]:
    """Read and check a manifest; return its rows and the class names in order.

    Paths are resolved against the manifest's folder and may not leave it.
    ``labels`` fixes the classes and their order; a row with any other label is
    an error. Without it, the classes are the sorted distinct labels.
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
        rows = [
            _parse_row(path, root, i + 2, r, label_column) for i, r in enumerate(reader)
        ]
    if not rows:
        raise ManifestError(f"{path}: the manifest has no rows")
    _check_duplicates(path, rows)
    found = sorted({r.label for r in rows})
    if labels is None:
        names = tuple(found)
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


def _parse_row(
    manifest: Path, root: Path, line: int, raw: dict, label_column: str
) -> ManifestRow:
    where = f"{manifest}, line {line}"
    values = {}
    for column in (*REQUIRED_COLUMNS, label_column):
        value = (raw.get(column) or "").strip()
        if not value:
            raise ManifestError(f"{where}: empty {column!r}")
        values[column] = value
    resolved = (root / values["path"]).resolve()
    if not resolved.is_relative_to(root):
        raise ManifestError(
            f"{where}: path {values['path']!r} leaves the manifest's folder {root}"
        )
    frame_text = (raw.get("frame") or "").strip()
    try:
        frame = int(frame_text) if frame_text else -1
    except ValueError as exc:
        raise ManifestError(f"{where}: frame {frame_text!r} is not an integer") from exc
    return ManifestRow(
        line=line,
        path=resolved,
        subject=values["subject"],
        session=values["session"],
        label=values[label_column],
        frame=frame,
    )


def _check_duplicates(manifest: Path, rows: list[ManifestRow]) -> None:
    seen: dict[Path, int] = {}
    for row in rows:
        if row.path in seen:
            raise ManifestError(
                f"{manifest}, line {row.line}: duplicate of line {seen[row.path]} "
                f"({row.path.name})"
            )
        seen[row.path] = row.line
