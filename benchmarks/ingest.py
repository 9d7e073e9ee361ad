"""Frames per second of ingest_manifest against a plain Pillow decode loop.

Both run in this one process over the same files (by default the in-car JPEGs
of the shared data folder), alternating, so that disk cache and CPU state are
alike; each is repeated and the best run kept. The ratio ingest / plain is
printed per HDF5 compression setting; the goal is at least 0.8. Ingest runs
with its default prefetch (one background thread decodes the next batch while
the current one is hashed and written) and, as "1 thread", without it.

Usage::

    python benchmarks/ingest.py [--manifest PATH] [--repeats N]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from thermia.data.ingest import ingest_manifest

#: name -> (compression, compression_opts, prefetch)
SETTINGS = {
    "none, 1 thread": (None, None, False),
    "none": (None, None, True),
    "lzf": ("lzf", None, True),
    "gzip:1": ("gzip", 1, True),
}


def _shared() -> Path:
    env = os.environ.get("THERMIA_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


def plain_decode(paths: list[Path]) -> float:
    """Seconds to decode every file with Pillow into a NumPy array."""
    start = time.perf_counter()
    total = 0
    for path in paths:
        with Image.open(path) as image:
            total += int(np.asarray(image)[0, 0])
    return time.perf_counter() - start


def timed_ingest(
    manifest: Path, out: Path, compression, opts, prefetch: bool
) -> tuple[float, int]:
    """Seconds for one ingest, and the size of the file it wrote."""
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    ingest_manifest(
        out, manifest, compression=compression, compression_opts=opts, prefetch=prefetch
    )
    return time.perf_counter() - start, out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = _shared() / "data" / "thermal-incar" / "manifest.csv"
    parser.add_argument("--manifest", type=Path, default=default)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with args.manifest.open(newline="") as handle:
        paths = [args.manifest.parent / r["path"] for r in csv.DictReader(handle)]
    n = len(paths)
    plain_decode(paths)  # warm the page cache
    best_plain = float("inf")
    best = {name: (float("inf"), 0) for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "frames.h5"
        for _ in range(args.repeats):
            best_plain = min(best_plain, plain_decode(paths))
            for name, setting in SETTINGS.items():
                seconds, size = timed_ingest(args.manifest, out, *setting)
                best[name] = (min(best[name][0], seconds), size)
    plain_fps = n / best_plain
    print(f"{n} frames, 1 process, best of {args.repeats}")  # noqa: T201
    print(f"plain Pillow decode: {plain_fps:8.0f} frames/s")  # noqa: T201
    for name, (seconds, size) in best.items():
        fps = n / seconds
        print(  # noqa: T201
            f"ingest, compression {name:14s}: {fps:8.0f} frames/s, "
            f"ratio {fps / plain_fps:.2f}, file {size / 2**20:.1f} MiB"
        )


if __name__ == "__main__":
    main()
