"""Command line: ``thermia check`` (config and data, no training) and helpers."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from thermia.config import ConfigError, load_config

log = logging.getLogger("thermia")


def check(configfile: str) -> int:
    """Validate a configuration and, for a manifest, every row and frame.

    A manifest is ingested into a temporary folder that is removed afterwards,
    so the check applies exactly the validation the workflow's ingest applies.
    """
    import tempfile

    from thermia.data.ingest import ingest
    from thermia.data.manifest import warn_if_unit_finer_than_subject
    from thermia.data.storage import read_meta

    config = load_config(configfile)
    log.info("%s: configuration valid", configfile)
    with warnings.catch_warnings():  # logged already; print it once
        warnings.simplefilter("ignore")
        warn_if_unit_finer_than_subject(config["split"]["membership_unit"])
    data = config["data"]
    if data["source"] == "manifest":
        with tempfile.TemporaryDirectory(prefix="thermia-check-") as folder:
            frames = Path(folder) / "frames.h5"
            ingest(frames, data, seed=config["seed"])
            meta = read_meta(frames)
            log.info(
                "%s: %d frames, %d subjects, %d sessions, classes %s, scale %s",
                data["manifest"]["path"],
                meta.n_frames,
                len(set(meta.subject)),
                len(set(zip(meta.subject, meta.session, strict=True))),
                ", ".join(meta.label_names),
                meta.attrs["radiometric_scale"],
            )
    return 0


def make_manifest(root: str, pattern: str, out: str) -> int:
    from thermia.data.layout import build_manifest

    build_manifest(Path(root), pattern, Path(out))
    log.info("wrote %s", out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thermia", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="validate config (and manifest) only")
    p_check.add_argument("--configfile", default="config.yaml")
    p_make = sub.add_parser("make-manifest", help="write a manifest from a folder")
    p_make.add_argument("root", help="folder holding the frames")
    p_make.add_argument(
        "--pattern",
        default="{subject}/{session}/{label}/*",
        help="path pattern below root with {subject}, {session}, {label} fields",
    )
    p_make.add_argument("--out", required=True, help="manifest CSV to write")
    p_readme = sub.add_parser("readme", help="regenerate README result sections")
    p_readme.add_argument("--readme", default="README.md")
    p_readme.add_argument("--section", required=True)
    p_readme.add_argument("--results", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "check":
            return check(args.configfile)
        if args.command == "make-manifest":
            return make_manifest(args.root, args.pattern, args.out)
        from thermia.evaluation.readme import update_readme

        update_readme(Path(args.readme), args.section, Path(args.results))
        return 0
    except (ConfigError, ValueError, OSError) as exc:
        log.error("error: %s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
