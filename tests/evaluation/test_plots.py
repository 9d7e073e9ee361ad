"""ROC and histogram figures: valid PNGs, written atomically."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from thermia.evaluation import metrics, plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def attack_scores(seed, shift, n=300):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return labels, rng.normal(size=n) + shift * labels


def assert_png(path):
    assert path.is_file()
    assert path.stat().st_size > 0
    with path.open("rb") as handle:
        assert handle.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width > 100
        assert image.height > 100


def roc_curves():
    curves = {}
    for name, shift in [("loss", 0.5), ("lira", 1.5)]:
        labels, scores = attack_scores(1, shift)
        fpr, tpr, _ = metrics.roc_curve(labels, scores)
        curves[name] = (fpr, tpr, metrics.auc(labels, scores))
    labels, scores = attack_scores(2, 0.0)
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    curves["no_auc"] = (fpr, tpr)
    return curves


def test_plot_roc_writes_a_png(tmp_path):
    path = tmp_path / "attack" / "roc.png"
    plots.plot_roc(roc_curves(), path, title="target 0")
    assert_png(path)
    assert [p.name for p in path.parent.iterdir()] == ["roc.png"]


def test_plot_roc_with_smallest_fpr_below_or_above_1e_3(tmp_path):
    fpr = np.array([0.0, 1e-4, 0.5, 1.0])
    tpr = np.array([0.0, 0.2, 0.8, 1.0])
    plots.plot_roc({"a": (fpr, tpr)}, tmp_path / "small.png")
    plots.plot_roc(
        {"a": (np.array([0, 0.1, 1]), np.array([0, 0.5, 1]))}, tmp_path / "b.png"
    )
    assert_png(tmp_path / "small.png")
    assert_png(tmp_path / "b.png")


def test_plot_score_histograms_writes_a_png(tmp_path):
    scores_by_attack = {}
    for name, shift in [("loss", 0.5), ("lira", 1.5), ("rmia", 1.0), ("shokri", 0.2)]:
        labels, scores = attack_scores(3, shift)
        scores_by_attack[name] = (scores[labels == 1], scores[labels == 0])
    path = tmp_path / "hist.png"
    plots.plot_score_histograms(scores_by_attack, path)
    assert_png(path)


def test_empty_inputs_are_rejected(tmp_path):
    with pytest.raises(ValueError):
        plots.plot_roc({}, tmp_path / "roc.png")
    with pytest.raises(ValueError):
        plots.plot_score_histograms({}, tmp_path / "hist.png")
    assert list(tmp_path.iterdir()) == []


def failing_savefig(self, fname, *args, **kwargs):
    with open(fname, "wb") as handle:
        handle.write(PNG_SIGNATURE)  # a partial file, then the failure
    raise OSError("disk full")


def test_failing_savefig_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    with pytest.raises(OSError, match="disk full"):
        plots.plot_roc(roc_curves(), tmp_path / "roc.png")
    with pytest.raises(OSError, match="disk full"):
        plots.plot_score_histograms(
            {"loss": (np.arange(5.0), np.arange(5.0))}, tmp_path / "hist.png"
        )
    assert list(tmp_path.iterdir()) == []


def test_failing_savefig_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "roc.png"
    plots.plot_roc(roc_curves(), path)
    before = path.read_bytes()
    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    with pytest.raises(OSError):
        plots.plot_roc(roc_curves(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["roc.png"]
