"""Frames per second of ingest_manifest against a plain Pillow decode loop.

Everything runs in this one process over the same files (by default the
in-car JPEGs of the shared data folder), one setting after another in each
round, so that disk cache and CPU state are alike; the best of the rounds is
kept. The baseline is the plain loop: open each file with Pillow and turn it
into a NumPy array, in one thread. The goal is an ingest rate of at least 0.8
of it.

Ingest does more than decode: it detects each file's format by content,
checks every frame, hashes it (duplicate check and content hash) and writes it
to HDF5. By default two threads decode and check batches ahead while the
caller's thread hashes and writes, so the rows show ingest with 0 (all in the
caller's thread), 1 and 2 decoding threads, and, for reference, the plain loop
spread over 2 threads. Then the HDF5 compressions, each with 2 threads;
``blosc-lz4`` only when ``hdf5plugin`` is installed (``pip install -e
".[blosc]"``).

Usage::

    python benchmarks/ingest.py [--manifest PATH] [--repeats N] [--markdown]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from thermia.data.ingest import ingest_manifest

#: row name -> (compression, decoding threads)
SETTINGS = {
    "ingest, 0 threads": (None, 0),
    "ingest, 1 thread": (None, 1),
    "ingest, 2 threads (default)": (None, 2),
    "ingest, lzf": ("lzf", 2),
    "ingest, gzip": ("gzip", 2),
    "ingest, blosc-lz4": ("blosc-lz4", 2),
}


def _shared() -> Path:
    env = os.environ.get("THERMIA_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


def _decode(path: Path) -> int:
    with Image.open(path) as image:
        return int(np.asarray(image)[0, 0])


def plain_decode(paths: list[Path], threads: int = 1) -> float:
    """Seconds to decode every file with Pillow into a NumPy array."""
    start = time.perf_counter()
    if threads == 1:
        for path in paths:
            _decode(path)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(_decode, paths))
    return time.perf_counter() - start


def timed_ingest(
    manifest: Path, out: Path, compression: str | None, threads: int
) -> tuple[float, int]:
    """Seconds for one ingest, and the size of the file it wrote."""
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    ingest_manifest(out, manifest, compression=compression, threads=threads)
    return time.perf_counter() - start, out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = _shared() / "data" / "thermal-incar" / "manifest.csv"
    parser.add_argument("--manifest", type=Path, default=default)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="print a table")
    args = parser.parse_args()
    with args.manifest.open(newline="") as handle:
        paths = [args.manifest.parent / r["path"] for r in csv.DictReader(handle)]
    settings = dict(SETTINGS)
    if importlib.util.find_spec("hdf5plugin") is None:
        del settings["ingest, blosc-lz4"]
    n = len(paths)
    plain_decode(paths)  # warm the page cache
    plain = {1: float("inf"), 2: float("inf")}
    best = {name: (float("inf"), 0) for name in settings}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "frames.h5"
        for _ in range(args.repeats):
            for threads in plain:
                plain[threads] = min(plain[threads], plain_decode(paths, threads))
            for name, setting in settings.items():
                seconds, size = timed_ingest(args.manifest, out, *setting)
                best[name] = (min(best[name][0], seconds), size)
    rows = [("plain decode loop (baseline)", plain[1], 0)]
    rows.append(("plain decode, 2 threads", plain[2], 0))
    rows += [(name, seconds, size) for name, (seconds, size) in best.items()]
    show(rows, n, args.repeats, args.markdown)


def show(rows, n: int, repeats: int, markdown: bool) -> None:
    """Print frames/s, the ratio to the baseline and the file size per row."""
    baseline = n / rows[0][1]
    if markdown:
        print("| run | frames/s | ratio to plain loop | file (MiB) |")  # noqa: T201
        print("|---|---:|---:|---:|")  # noqa: T201
    else:
        print(f"{n} frames, 1 process, best of {repeats} rounds")  # noqa: T201
    for name, seconds, size in rows:
        fps = n / seconds
        mib = f"{size / 2**20:.0f}" if size else "—"
        if markdown:
            line = f"| {name} | {fps:.0f} | {fps / baseline:.2f} | {mib} |"
        else:
            line = f"{name:30s} {fps:7.0f} frames/s  ratio {fps / baseline:4.2f}  {mib}"
        print(line)  # noqa: T201


if __name__ == "__main__":
    main()
