"""An interrupted training run resumes from its checkpoint to the same model."""

from __future__ import annotations

import numpy as np
import pytest

from thermia.train.fit import TrainSettings, fit_and_predict


class StopTrainingError(RuntimeError):
    pass


def _data():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(48, 12, 12)).astype(np.float32)
    labels = rng.integers(0, 2, size=48)
    return inputs, labels, np.arange(48) < 32


def _settings(epochs):
    return TrainSettings(
        epochs=epochs,
        batch_size=8,
        learning_rate=1e-3,
        weight_decay=0.0,
        channels=4,
        seed=11,
    )


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    inputs, labels, mask = _data()
    whole = fit_and_predict(
        inputs, labels, mask, 2, _settings(4), snapshot_epochs=[1, 3]
    )

    def stop_in_epoch_three(epoch, metrics):
        if epoch == 2:  # the checkpoint of epoch 2 is on disk, epoch 3 is lost
            raise StopTrainingError

    with pytest.raises(StopTrainingError):
        fit_and_predict(
            inputs,
            labels,
            mask,
            2,
            _settings(4),
            on_epoch=stop_in_epoch_three,
            snapshot_epochs=[1, 3],
            resume_dir=tmp_path,
        )
    assert (tmp_path / "last.ckpt").is_file()
    resumed = fit_and_predict(
        inputs,
        labels,
        mask,
        2,
        _settings(4),
        snapshot_epochs=[1, 3],
        resume_dir=tmp_path,
    )
    np.testing.assert_array_equal(resumed.logits, whole.logits)
    for epoch in (1, 3):
        np.testing.assert_array_equal(resumed.snapshots[epoch], whole.snapshots[epoch])
    assert len(resumed.history) == 4


def test_without_checkpoint_a_run_starts_fresh(tmp_path):
    inputs, labels, mask = _data()
    first = fit_and_predict(inputs, labels, mask, 2, _settings(2), resume_dir=tmp_path)
    plain = fit_and_predict(inputs, labels, mask, 2, _settings(2))
    np.testing.assert_array_equal(first.logits, plain.logits)
