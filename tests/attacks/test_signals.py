import math

import numpy as np
import pytest

from thermia.attacks.signals import compute_signals


def reference_signals(logits, labels):
    """Per-element float64 reference written with the math module."""
    n_models, n_frames, _ = logits.shape
    loss = np.zeros((n_models, n_frames))
    phi = np.zeros((n_models, n_frames))
    for m in range(n_models):
        for i in range(n_frames):
            row = [float(v) for v in logits[m, i]]
            if len(row) == 1:
                row = [0.0, row[0]]
            top = max(row)
            log_norm = top + math.log(sum(math.exp(v - top) for v in row))
            y = int(labels[i])
            others = [v for c, v in enumerate(row) if c != y]
            top_other = max(others)
            log_other = top_other + math.log(
                sum(math.exp(v - top_other) for v in others)
            )
            loss[m, i] = log_norm - row[y]
            phi[m, i] = row[y] - log_other
    return loss, phi


@pytest.mark.parametrize("n_classes", [1, 2, 5])
def test_signals_match_reference(n_classes):
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(3, 40, n_classes))
    labels = rng.integers(max(n_classes, 2), size=40)
    signals = compute_signals(logits, labels)
    loss, phi = reference_signals(logits, labels)
    np.testing.assert_allclose(signals["loss"], loss, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(signals["phi"], phi, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(signals["p_true"], np.exp(-loss), rtol=1e-12)
    probs = signals["probs"]
    assert probs.shape == (3, 40, max(n_classes, 2))
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, rtol=1e-12)
    picked = np.take_along_axis(probs, labels[None, :, None].repeat(3, 0), axis=2)
    np.testing.assert_allclose(picked[:, :, 0], signals["p_true"], rtol=1e-12)
    ordered = signals["probs_sorted"]
    assert np.all(np.diff(ordered, axis=2) <= 0)
    np.testing.assert_allclose(np.sort(ordered, axis=2), np.sort(probs, axis=2))


def test_one_column_binary_equals_two_columns():
    rng = np.random.default_rng(1)
    z = rng.normal(scale=3.0, size=(4, 30, 1))
    labels = rng.integers(2, size=30)
    one = compute_signals(z, labels)
    two = compute_signals(np.concatenate([np.zeros_like(z), z], axis=2), labels)
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])
    # The single column is the log-odds of class 1.
    expected_phi = np.where(labels == 1, z[:, :, 0], -z[:, :, 0])
    np.testing.assert_allclose(one["phi"], expected_phi, rtol=1e-12)


def test_extreme_logits_stay_finite():
    logits = np.array(
        [
            [[1e3, -1e3, 0.0], [1e3, 1e3, -1e3], [-1e3, 1e3, 1e3], [5.0, 5.0, 5.0]],
        ]
    )
    labels = np.array([0, 0, 0, 2])
    signals = compute_signals(logits, labels)
    phi = signals["phi"][0]
    assert np.all(np.isfinite(phi))
    assert np.all(np.isfinite(signals["loss"]))
    # z_y - logsumexp(others): exact values known in closed form.
    np.testing.assert_allclose(phi[0], 1e3 - np.logaddexp(-1e3, 0.0))
    np.testing.assert_allclose(phi[1], 1e3 - np.logaddexp(1e3, -1e3))
    np.testing.assert_allclose(phi[2], -1e3 - np.logaddexp(1e3, 1e3))
    np.testing.assert_allclose(phi[3], -np.log(2.0))
    np.testing.assert_allclose(signals["loss"][0, 2], 2e3 + np.log(2.0))
    binary = compute_signals(np.array([[[1e3], [-1e3]]]), np.array([1, 1]))
    np.testing.assert_allclose(binary["phi"][0], [1e3, -1e3])
    np.testing.assert_allclose(binary["loss"][0], [0.0, 1e3], atol=1e-300)


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="labels"):
        compute_signals(np.zeros((1, 2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="finite"):
        compute_signals(np.array([[[np.nan, 0.0]]]), np.array([0]))
