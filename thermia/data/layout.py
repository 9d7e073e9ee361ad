"""Build a manifest CSV from a folder layout, for data that comes without one.

A pattern is a path relative to the root whose parts may hold fields in braces,
``{subject}``, ``{session}``, ``{label}`` (all three required), ``{frame}``,
``{time}`` or any other name (kept as an extra column), and ``*`` for any
text within one part. The default, ``{subject}/{session}/{label}/*``, reads the
layout ``raw/<subject>/<session>/<label>/<file>``. A field matches one or more
characters other than ``/``; a field named twice must take the same value.

The manifest written is one that :func:`thermia.data.manifest.read_manifest`
accepts. Links, to files or folders, are followed when they stay inside the
manifest's folder, the rule the reader applies to every path; a link that
leaves it is left out. Files that do not match the pattern, files that are not
frames, broken links and second names (through links) of a file already listed
are left out too; every group left out is logged with its first few names. A
matching frame file that no manifest row could describe (a ``{frame}`` part
that is not a whole number, a blank field, a path the reader would read as
another file) stops the build with an error naming it, and nothing is written.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import defaultdict, deque
from pathlib import Path

from thermia.data.manifest import ManifestError, _resolve, read_manifest
from thermia.data.readers import FORMATS, FrameReadError, detect_format
from thermia.io import atomic_path

log = logging.getLogger(__name__)

DEFAULT_PATTERN = "{subject}/{session}/{label}/*"
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REQUIRED = ("subject", "session", "label")
_HIDDEN = (".", "_")
_SHOWN = 5  # names listed in a message before "and N more"


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
    if "path" in fields:
        raise LayoutError(f"pattern {pattern!r}: the column 'path' holds the file")
    return re.compile("".join(parts) + r"\Z"), fields


def build_manifest(
    root: str | Path, pattern: str = DEFAULT_PATTERN, out_csv: str | Path | None = None
) -> Path:
    """Write a manifest for every file under ``root`` that matches ``pattern``.

    Parameters
    ----------
    root
        The data folder. Hidden files and folders (starting with ``.`` or
        ``_``) are skipped without notice; other files left out are logged
        (see the module docstring).
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
        If ``root`` is not a folder, the manifest would sit below ``root``, no
        file matches, the files found hold fewer than two labels, or a matching
        frame file cannot be described by a manifest row. Nothing is written
        then.
    """
    given = Path(root)
    if not given.is_dir():
        problem = "not a folder" if given.exists() else "folder not found"
        raise LayoutError(f"{given}: {problem}")
    root = given.resolve()
    out = Path(out_csv).resolve() if out_csv else root / "manifest.csv"
    if out.is_dir():
        raise LayoutError(f"{out}: is a folder; give the manifest's file name")
    base = out.parent
    if not root.is_relative_to(base):
        raise LayoutError(
            f"{out}: the manifest must be in {root} or a folder above it, since "
            "manifest paths may not leave the manifest's folder"
        )
    regex, fields = pattern_regex(pattern)
    folders: dict[str, Path] = {}  # the reader's cache of resolved folders
    left_out: dict[str, list[str]] = defaultdict(list)  # names by reason
    unmatched = f"file(s) not matching the pattern {pattern!r}"
    leaves = _LEAVES.format(base=base)
    files = _walk(root, base, folders, left_out)
    found: dict[Path, list[tuple[Path, dict[str, str]]]] = {}
    for path in files:
        if path == out:
            continue
        match = regex.match(path.relative_to(root).as_posix())
        if match is None:
            left_out[unmatched].append(_show(root, path))
        elif not path.exists():  # a link to nothing, or a loop of links
            left_out[_BROKEN].append(_show(root, path))
        elif (target := _inside(base, path, folders)) is None:
            left_out[leaves].append(_arrow(root, path))
        elif target == out:
            continue
        elif not _is_frame(path):
            left_out[_NOT_FRAMES].append(_show(root, path))
        else:
            found.setdefault(target, []).append((path, match.groupdict()))
    rows = []
    problems = []
    for names in found.values():
        # A real file wins over links to it, then the first name in order.
        path, values = min(names, key=lambda n: (n[0].is_symlink(), n[0]))
        for other, _ in names:
            if other != path:
                left_out[_ALIAS].append(
                    f"{_show(root, other)} (same file as {_show(root, path)})"
                )
        row = {"path": path.relative_to(base).as_posix(), **values}
        problem = _row_problem(row)
        if problem:
            problems.append(f"{_show(root, path)}: {problem}")
        rows.append(row)
    for reason, names in left_out.items():
        if names:
            log.warning(
                "%s: left out %d %s: %s", root, len(names), reason, _few(sorted(names))
            )
    if problems:
        raise LayoutError(
            f"{root}: {len(problems)} matching frame file(s) cannot be listed, so "
            f"no manifest was written (rename them or change the pattern "
            f"{pattern!r}): {_few(sorted(problems))}"
        )
    if not rows:
        raise LayoutError(f"{root}: no file matches the pattern {pattern!r}")
    labels = sorted({row["label"].strip() for row in rows})
    if len(labels) < 2:
        raise LayoutError(
            f"{root}: all {len(rows)} file(s) found have label {labels[0]!r}; a "
            f"manifest needs at least two; is {{label}} in the right place in the "
            f"pattern {pattern!r}?"
        )
    rows.sort(key=lambda row: row["path"])
    columns = ["path", *_REQUIRED, *[f for f in fields if f not in _REQUIRED]]
    with atomic_path(out) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        try:  # the same checks ingest applies first; a failure is a bug here
            read_manifest(tmp)
        except ManifestError as exc:
            reason = str(exc).replace(str(tmp), out.name)
            raise LayoutError(
                f"{out}: not written, since reading it back fails: {reason}"
            ) from exc
    log.info("wrote %d rows to %s", len(rows), out)
    return out


_LEAVES = "link(s) that lead out of the manifest's folder {base}"
_ALIAS = "second name(s), through links, of a file or folder already listed"
_BROKEN = "broken link(s)"
_NOT_FRAMES = "file(s) that are not frames"


def _walk(
    root: Path, base: Path, folders: dict[str, Path], left_out: dict[str, list[str]]
) -> list[Path]:
    """List the files under ``root``, following folder links that stay in ``base``.

    Real folders are listed before folders reached through links, so a file
    that is reachable both ways is found under its real path first, and a
    folder is listed only once. Returns the files (paths under ``root``, not
    resolved); folder links not followed are added to ``left_out``.
    """
    files: list[Path] = []
    seen: dict[Path, Path] = {}
    pending = deque([root])
    links: deque[Path] = deque()
    while pending or links:
        if pending:
            folder = pending.popleft()
        else:
            folder = links.popleft()
            if _inside(base, folder, folders) is None:
                left_out[_LEAVES.format(base=base)].append(_arrow(root, folder))
                continue
        real = folder.resolve()
        if real in seen:
            left_out[_ALIAS].append(
                f"{_show(root, folder)} (same folder as {_show(root, seen[real])})"
            )
            continue
        seen[real] = folder
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if not e.name.startswith(_HIDDEN))
        for name in names:
            path = folder / name
            if not path.is_dir():
                files.append(path)
            elif path.is_symlink():
                links.append(path)
            else:
                pending.append(path)
    return files


def _inside(base: Path, path: Path, folders: dict[str, Path]) -> Path | None:
    """Return ``path`` as the manifest reader resolves it, or None if it leaves."""
    resolved = _resolve(base, path.relative_to(base).as_posix(), folders)
    return resolved if resolved.is_relative_to(base) else None


def _is_frame(path: Path) -> bool:
    try:
        detect_format(path)
    except FrameReadError:
        return False
    return True


def _row_problem(row: dict[str, str]) -> str | None:
    """Say why the manifest reader would refuse or misread ``row``, if it would."""
    path = row["path"]
    if path != path.strip() or "\\" in path:
        return "a manifest path cannot hold a backslash or start or end with a space"
    for name in _REQUIRED:
        if not row[name].strip():
            return f"the {{{name}}} part is blank"
    frame = row.get("frame", "").strip()
    if frame:
        try:
            valid = int(frame) >= 0
        except ValueError:
            valid = False
        if not valid:
            return f"the {{frame}} part {frame!r} is not a whole number 0 or above"
    fmt = row.get("format", "").strip().lower()
    if fmt not in ("", "auto", *FORMATS):
        return f"the {{format}} part {fmt!r} is not one of {', '.join(FORMATS)}"
    return None


def _show(root: Path, path: Path) -> str:
    return repr(path.relative_to(root).as_posix())


def _arrow(root: Path, path: Path) -> str:
    """Name a link and where it leads."""
    return f"{_show(root, path)} -> {str(path.resolve())!r}"


def _few(names: list[str]) -> str:
    """Join the first few ``names``, then say how many more there are."""
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _literal(text: str) -> str:
    return "[^/]*".join(re.escape(piece) for piece in text.split("*"))
