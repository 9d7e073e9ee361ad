"""Build a manifest CSV from a folder layout, for data that comes without one.

A pattern is a path relative to the root whose parts may hold fields in braces,
``{subject}``, ``{session}``, ``{label}`` (all three required), ``{frame}``,
``{time}`` or any other name (kept as an extra column), and ``*`` for any
text within one part. The default, ``{subject}/{session}/{label}/*``, reads the
layout ``raw/<subject>/<session>/<label>/<file>``. A field matches one or more
characters other than ``/``; a field named twice must take the same value.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

from thermia.data.readers import FrameReadError, detect_format
from thermia.io import atomic_path

log = logging.getLogger(__name__)

DEFAULT_PATTERN = "{subject}/{session}/{label}/*"
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REQUIRED = ("subject", "session", "label")
_HIDDEN = (".", "_")


class LayoutError(ValueError):
    """A folder layout or pattern cannot be turned into a manifest."""


def pattern_regex(pattern: str) -> tuple[re.Pattern[str], list[str]]:
    """Compile ``pattern``; return the regex and its field names in order."""
    fields: list[str] = []
    parts = []
    position = 0
    for match in _FIELD.finditer(pattern):
        parts.append(_literal(pattern[position : match.start()]))
        name = match.group(1)
        if name in fields:
            parts.append(f"(?P={name})")
        else:
            fields.append(name)
            parts.append(rf"(?P<{name}>[^/]+?)")
        position = match.end()
    parts.append(_literal(pattern[position:]))
    missing = [f for f in _REQUIRED if f not in fields]
    if missing:
        raise LayoutError(f"pattern {pattern!r} lacks field(s) {', '.join(missing)}")
    return re.compile("".join(parts) + r"\Z"), fields


def build_manifest(
    root: str | Path, pattern: str = DEFAULT_PATTERN, out_csv: str | Path | None = None
) -> Path:
    """Write a manifest for every file under ``root`` that matches ``pattern``.

    Parameters
    ----------
    root
        The data folder. Hidden files and folders (starting with ``.`` or
        ``_``) are skipped.
    pattern
        See the module docstring.
    out_csv
        Where to write; by default ``root / "manifest.csv"``. It must lie in
        ``root`` or above it so that the paths it holds stay inside its folder.

    Returns
    -------
    Path
        The manifest written (atomically), one row a file, sorted by path,
        with paths relative to the manifest's folder.

    Raises
    ------
    LayoutError
        If no file matches, or the manifest would sit below ``root``.
    """
    root = Path(root).resolve()
    out = Path(out_csv).resolve() if out_csv else root / "manifest.csv"
    if not root.is_relative_to(out.parent):
        raise LayoutError(
            f"{out}: the manifest must be in {root} or a folder above it, since "
            "manifest paths may not leave the manifest's folder"
        )
    regex, fields = pattern_regex(pattern)
    rows = []
    skipped = 0
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or path == out:
            continue
        if any(part.startswith(_HIDDEN) for part in relative.parts):
            continue
        match = regex.match(relative.as_posix())
        if match is None:
            skipped += 1
            continue
        try:
            detect_format(path)
        except FrameReadError:
            log.warning("%s: not a frame file, left out", relative)
            skipped += 1
            continue
        row = {"path": path.relative_to(out.parent).as_posix()}
        row.update(match.groupdict())
        rows.append(row)
    if not rows:
        raise LayoutError(f"{root}: no file matches the pattern {pattern!r}")
    if skipped:
        log.warning(
            "%s: %d file(s) left out (not matching %r, or not frames)",
            root,
            skipped,
            pattern,
        )
    columns = ["path", *_REQUIRED, *[f for f in fields if f not in _REQUIRED]]
    with atomic_path(out) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    log.info("wrote %d rows to %s", len(rows), out)
    return out


def _literal(text: str) -> str:
    return "[^/]*".join(re.escape(piece) for piece in text.split("*"))
