"""The README's generated answer to "does this factor move attack power?"."""

from __future__ import annotations

from thermia.evaluation.readme import _answer, _log_times


def rows(*points: tuple[str, str, float, float, float]) -> list[dict]:
    """Summary rows: (factor, n_shadows, auc, ci_low, ci_high) per point."""
    return [
        {
            "factor": factor,
            "n_shadows": level,
            "attack": "loss",
            "level": "unit",
            "auc": str(auc),
            "auc_ci_low": str(low),
            "auc_ci_high": str(high),
        }
        for factor, level, auc, low, high in points
    ]


def test_separated_intervals_are_a_measurable_effect():
    line = _answer(
        rows(("base", "4", 0.80, 0.75, 0.85), ("n_shadows", "1", 0.60, 0.55, 0.70)),
        "n_shadows",
        "loss",
    )
    assert line == (
        "**n_shadows**: measurable effect; loss AUC 0.60 at n_shadows=1 to 0.80 at "
        "n_shadows=4 (intervals do not overlap)."
    )


def test_overlapping_intervals_are_no_measurable_effect():
    line = _answer(
        rows(("base", "4", 0.80, 0.70, 0.88), ("n_shadows", "1", 0.75, 0.66, 0.84)),
        "n_shadows",
        "loss",
    )
    assert line.startswith("**n_shadows**: no measurable effect at this sample size;")
    assert "loss AUC 0.75 at n_shadows=1 to 0.80 at n_shadows=4" in line


def test_equal_aucs_name_every_level():
    line = _answer(
        rows(
            ("base", "4", 0.7922, 0.73, 0.85),
            ("n_shadows", "8", 0.7918, 0.73, 0.85),
            ("n_shadows", "1", 0.7920, 0.73, 0.85),
            ("n_shadows", "10", 0.7921, 0.73, 0.85),
        ),
        "n_shadows",
        "loss",
    )
    assert line == (
        "**n_shadows**: no effect seen; loss AUC 0.79 at every level tried "
        "(1, 4, 8, 10)."
    )


def test_wall_time_leaves_out_the_study_logs(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "study").mkdir()
    (tmp_path / "ingest.log").write_text("2026-01-01 10:00:00 INFO start\n")
    (tmp_path / "train" / "0.log").write_text(
        "2026-01-01 10:02:00 INFO epoch\n  a continued line\n"
        "2026-01-01 10:05:30 INFO done\n"
    )
    (tmp_path / "study" / "ingest.log").write_text("2026-01-01 09:00:00 INFO\n")
    first, last = _log_times(tmp_path)
    assert (last - first).total_seconds() == 330
