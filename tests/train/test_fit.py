"""Tests of fit-then-predict-all and of unit-balanced accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thermia.train.fit import (
    TrainSettings,
    fit_and_predict,
    predict_logits,
    unit_balanced_accuracy,
)

N_FRAMES = 64


def separable(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(64, 16, 16)`` noisy frames; class 1 frames carry a bright square."""
    rng = np.random.default_rng(seed)
    labels = np.arange(N_FRAMES) % 2
    inputs = rng.normal(0, 0.5, (N_FRAMES, 16, 16)).astype(np.float32)
    inputs[labels == 1, 4:10, 5:11] += 2.0
    return inputs, labels


def settings(**changes) -> TrainSettings:
    values = {
        "epochs": 3,
        "batch_size": 16,
        "learning_rate": 3e-3,
        "weight_decay": 0.0,
        "channels": 4,
        "seed": 0,
        "threads": 1,
    }
    return TrainSettings(**{**values, **changes})


TRAIN = np.random.default_rng(1).permutation(N_FRAMES) < N_FRAMES // 2


@pytest.fixture(scope="module")
def short_fits() -> dict[str, np.ndarray]:
    """Logits of three short fits: seed 0 twice and seed 1 once."""
    inputs, labels = separable()
    return {
        name: fit_and_predict(inputs, labels, TRAIN, 2, settings(seed=seed)).logits
        for name, seed in (("a", 0), ("b", 0), ("c", 1))
    }


def test_separable_problem_is_learnt():
    inputs, labels = separable()
    epochs_seen = []
    threads_seen = []

    def on_epoch(epoch, metrics):
        epochs_seen.append(epoch)
        threads_seen.append(torch.get_num_threads())

    result = fit_and_predict(
        inputs, labels, TRAIN, 2, settings(epochs=15), on_epoch=on_epoch
    )
    predicted = result.logits.argmax(axis=1)
    assert (predicted[TRAIN] == labels[TRAIN]).mean() == 1.0
    assert (predicted[~TRAIN] == labels[~TRAIN]).mean() >= 0.9
    assert epochs_seen == list(range(15))
    assert set(threads_seen) == {1}
    assert len(result.history) == 15
    assert "train_loss" in result.history[-1]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_logits_cover_every_frame(short_fits):
    logits = short_fits["a"]
    assert logits.shape == (N_FRAMES, 2)
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()


def test_logits_are_the_trained_model_on_each_frame():
    inputs, labels = separable(seed=2)
    result = fit_and_predict(inputs, labels, TRAIN, 3, settings(epochs=1))
    assert result.logits.shape == (N_FRAMES, 3)
    held_out = predict_logits(result.model, inputs[~TRAIN])
    np.testing.assert_allclose(result.logits[~TRAIN], held_out, atol=1e-5)


def test_same_seed_same_logits_other_seed_other_logits(short_fits):
    np.testing.assert_array_equal(short_fits["a"], short_fits["b"])
    assert not np.allclose(short_fits["a"], short_fits["c"])


def test_caller_random_state_and_threads_are_restored():
    inputs, labels = separable(seed=3)
    torch.manual_seed(1234)
    torch.set_num_threads(2)
    try:
        before = torch.get_rng_state().clone()
        fit_and_predict(inputs, labels, TRAIN, 2, settings(epochs=1, threads=1))
        assert torch.equal(torch.get_rng_state(), before)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_empty_train_mask_raises():
    inputs, labels = separable()
    with pytest.raises(ValueError, match="no frames"):
        fit_and_predict(inputs, labels, np.zeros(N_FRAMES, bool), 2, settings())


def brute_force_unit_accuracy(correct, frame_unit, mask) -> float:
    per_unit = []
    for u in sorted(set(frame_unit.tolist())):
        values = [
            float(correct[i])
            for i in range(len(correct))
            if frame_unit[i] == u and mask[i]
        ]
        if values:
            per_unit.append(sum(values) / len(values))
    return sum(per_unit) / len(per_unit) if per_unit else float("nan")


@pytest.mark.parametrize("seed", range(5))
def test_unit_balanced_accuracy_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 200
    frame_unit = rng.integers(0, 23, n)
    correct = rng.random(n) < rng.random(23)[frame_unit]
    mask = rng.random(n) < 0.6
    got = unit_balanced_accuracy(correct, frame_unit, mask)
    assert got == pytest.approx(brute_force_unit_accuracy(correct, frame_unit, mask))


def test_unit_balanced_accuracy_weights_units_not_frames():
    correct = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)
    frame_unit = np.array([0] * 8 + [1] * 2)
    mask = np.ones(10, dtype=bool)
    assert unit_balanced_accuracy(correct, frame_unit, mask) == pytest.approx(0.5)
    assert np.isnan(unit_balanced_accuracy(correct, frame_unit, ~mask))
