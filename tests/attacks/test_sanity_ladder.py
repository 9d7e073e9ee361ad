"""The sanity ladder, on small models that were really trained.

Every model is :func:`thermia.train.fit.fit_and_predict` run on 16 × 16 frames
with 4 channels, on the CPU. Each unit is a distinct random pattern, its frames
that pattern plus a little noise; its label is drawn at random, so a model can
only get its training units right by memorising them. Three rungs:

- a target that memorises (training accuracy 1.0) is caught by every attack;
- models that never trained give attack AUCs whose 95% bootstrap interval
  covers 0.5 and has the width the number of units implies;
- dropping half the non-member units leaves AUC within sampling error and does
  not inflate balanced accuracy.

Attack parameters are the workflow's defaults (the configuration schema's), and
metrics are computed as the evaluation job computes them
(:func:`thermia.evaluation.job.score_metrics`). Scores: higher means more likely
a member; label 1 = member.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from thermia.attacks import AttackResult, MembershipView, Turn, run_attack
from thermia.attacks.view import attack_params
from thermia.config import validate_config
from thermia.evaluation.job import score_metrics
from thermia.train.fit import TrainSettings, fit_and_predict

ALL_ATTACKS = ("shokri", "loss", "lira_offline", "lira_online", "rmia")
DISJOINT_ATTACKS = ("shokri", "loss", "lira_offline", "rmia")
N_UNITS = 100
FRAMES_PER_UNIT = 2
N_MODELS = 8
SIZE = 16
NULL_SEEDS = (0, 1, 2, 3)
EVALUATION = {"alphas": [0.01, 0.1], "n_bootstrap": 1000, "ci": 0.95}


def unit_frames(seed: int, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames ``(n_frames, 16, 16)``, labels and units ``(n_frames,)``.

    Unit ``u`` has a pattern ``N(0, 1)`` per pixel; each of its frames adds
    ``N(0, 0.3²)`` noise. Labels are uniform over ``n_classes``, one per unit.
    """
    rng = np.random.default_rng(seed)
    units = np.repeat(np.arange(N_UNITS), FRAMES_PER_UNIT)
    pattern = rng.normal(size=(N_UNITS, SIZE, SIZE))
    noise = 0.3 * rng.normal(size=(units.size, SIZE, SIZE))
    inputs = (pattern[units] + noise).astype(np.float32)
    labels = rng.integers(n_classes, size=N_UNITS)[units]
    return inputs, labels, units


def half_rows(rng: np.random.Generator, n_rows: int, units: np.ndarray) -> np.ndarray:
    """``(n_rows, N_UNITS)`` bool: each row holds a random half of ``units``."""
    keep = np.zeros((n_rows, N_UNITS), dtype=bool)
    for row in keep:
        row[rng.permutation(units)[: units.size // 2]] = True
    return keep


def train_view(
    seed: int, n_classes: int, epochs: int, scheme: str = "independent"
) -> tuple[MembershipView, np.ndarray]:
    """Train ``N_MODELS`` models on the rows of a keep matrix; model 0 is target.

    ``scheme`` "independent": every row a random half of all units, every unit
    in every pool. "disjoint": the target's pool is a random half of the units,
    the shadows' pool the other half, and each model holds half of its pool.
    ``epochs = 0`` leaves every network as initialised.

    Returns the view and each model's accuracy on its own training frames.
    """
    rng = np.random.default_rng(seed)
    inputs, labels, units = unit_frames(seed, n_classes)
    if scheme == "independent":
        keep = half_rows(rng, N_MODELS, np.arange(N_UNITS))
        pool = np.ones_like(keep)
    else:
        order = rng.permutation(N_UNITS)
        target_pool, shadow_pool = order[: N_UNITS // 2], order[N_UNITS // 2 :]
        keep = np.concatenate(
            [half_rows(rng, 1, target_pool), half_rows(rng, N_MODELS - 1, shadow_pool)]
        )
        pool = np.zeros_like(keep)
        pool[0, target_pool] = True
        pool[1:, shadow_pool] = True
    logits, train_accuracy = [], []
    for model, row in enumerate(keep):
        settings = TrainSettings(
            epochs=epochs,
            batch_size=25,
            learning_rate=3e-3,
            weight_decay=0.0,
            channels=4,
            seed=1000 * seed + model,
        )
        fit = fit_and_predict(inputs, labels, row[units], n_classes, settings)
        held = row[units]
        train_accuracy.append(np.mean(fit.logits[held].argmax(1) == labels[held]))
        logits.append(fit.logits)
    view = MembershipView(np.stack(logits), labels, units, keep, pool)
    return view, np.array(train_accuracy)


def attack_all(view: MembershipView, names: tuple[str, ...]) -> dict:
    """Each attack's result, with the workflow's default parameters."""
    settings = validate_config(None)["attacks"]
    turn = Turn(0, tuple(range(1, view.n_models)))
    return {
        name: run_attack(
            name,
            view,
            [turn],
            attack_params(name, settings),
            seed=7,
            # Shokri fits one model per class and pseudo-target; two suffice here.
            max_pseudo_targets=2 if name == "shokri" else None,
        )
        for name in names
    }


def unit_metrics(result: AttackResult, keep_units: np.ndarray | None = None) -> dict:
    """Unit-level metrics as the evaluation job computes them (one turn)."""
    rows = np.ones(result.unit_id.size, bool) if keep_units is None else keep_units
    return score_metrics(
        result.unit_member[rows],
        result.unit_score[rows],
        result.unit_id[rows],
        result.unit_turn[rows],
        result.unit_threshold,
        EVALUATION,
        seed=11,
    )


def brute_auc(member: np.ndarray, score: np.ndarray) -> float:
    """Share of (member, non-member) pairs ranked right; ties count one half."""
    pos, neg = score[member][:, None], score[~member][None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def placements(member: np.ndarray, score: np.ndarray) -> np.ndarray:
    """For each non-member, the share of members scored above it (ties half).

    The AUC is the mean of these over the non-members.
    """
    pos, neg = score[member][None, :], score[~member][:, None]
    return np.mean((pos > neg) + 0.5 * (pos == neg), axis=1)


def null_auc_sd(n_members: int, n_non_members: int) -> float:
    """Standard deviation of the AUC when scores ignore membership.

    The Mann-Whitney statistic under exchangeability, without ties:
    ``sqrt((n1 + n0 + 1) / (12 n1 n0))``.
    """
    n1, n0 = n_members, n_non_members
    return math.sqrt((n1 + n0 + 1) / (12 * n1 * n0))


@pytest.fixture(scope="module")
def memorising():
    """Ten random classes, 20 epochs: every model learns its units by heart."""
    view, train_accuracy = train_view(seed=100, n_classes=10, epochs=20)
    return view, train_accuracy, attack_all(view, ALL_ATTACKS)


@pytest.fixture(scope="module")
def memorising_disjoint():
    """As :func:`memorising`, with target and shadows on disjoint pools."""
    view, train_accuracy = train_view(
        seed=101, n_classes=10, epochs=20, scheme="disjoint"
    )
    return view, train_accuracy, attack_all(view, DISJOINT_ATTACKS)


@pytest.fixture(scope="module")
def untrained():
    """Binary models left as initialised, one independent view per seed."""
    out = {}
    for seed in NULL_SEEDS:
        view, _ = train_view(seed=200 + seed, n_classes=2, epochs=0)
        out[seed] = attack_all(view, ALL_ATTACKS)
    return out


def check_caught(view, train_accuracy, result):
    """A memorising target: unit AUC above 0.9, members scored higher."""
    # The premise: the target got every training frame right.
    assert train_accuracy[0] == 1.0
    member = result.unit_member
    np.testing.assert_array_equal(member, view.keep[0, result.unit_id])
    assert set(result.unit_id.tolist()) == set(np.flatnonzero(view.pool[0]).tolist())
    value = brute_auc(member, result.unit_score)
    assert value > 0.9, f"{result.name}: unit AUC {value:.3f}"
    assert unit_metrics(result)["auc"] == pytest.approx(value, abs=1e-12)
    assert result.unit_score[member].mean() > result.unit_score[~member].mean()
    frame_member = result.member
    assert (
        result.frame_score[frame_member].mean()
        > result.frame_score[~frame_member].mean()
    )


@pytest.mark.parametrize("name", ALL_ATTACKS)
def test_memorising_target_is_caught(memorising, name):
    view, train_accuracy, results = memorising
    check_caught(view, train_accuracy, results[name])


@pytest.mark.parametrize("name", DISJOINT_ATTACKS)
def test_memorising_target_is_caught_with_disjoint_shadows(memorising_disjoint, name):
    view, train_accuracy, results = memorising_disjoint
    check_caught(view, train_accuracy, results[name])


@pytest.mark.parametrize("name", ALL_ATTACKS)
def test_untrained_models_give_intervals_around_chance(untrained, name):
    """Untrained models' scores cannot depend on membership: AUC is 0.5 in truth.

    Width: with ``n1`` members and ``n0`` non-members the AUC's standard
    deviation under no signal is ``sd0 = sqrt((n1 + n0 + 1) / (12 n1 n0))``,
    0.058 for 50 and 50, so a 95% interval should be about ``3.92 sd0`` = 0.23
    wide. Every interval must lie between half and one and a half times that
    (0.11 to 0.34 here): wider would be uninformative, narrower overconfident.

    Coverage: a 95% interval misses the truth one time in twenty by design, so
    demanding that all of 4 seeds × 5 attacks cover 0.5 would fail by chance
    about a third of the time (or pass only through a choice of seeds). Each
    attack may miss in at most one of its 4 seeds; two or more misses happen
    with probability 1.4% for a calibrated interval, and often for an interval
    that is biased or too narrow.
    """
    misses = []
    for seed, results in untrained.items():
        result = results[name]
        member = result.unit_member
        metrics = unit_metrics(result)
        assert metrics["auc"] == pytest.approx(
            brute_auc(member, result.unit_score), abs=1e-12
        )
        low, high = metrics["auc_ci_low"], metrics["auc_ci_high"]
        expected = 2 * 1.959964 * null_auc_sd(member.sum(), (~member).sum())
        assert 0.5 * expected < high - low < 1.5 * expected, (seed, low, high)
        if not low <= 0.5 <= high:
            misses.append((seed, round(low, 3), round(high, 3)))
    assert len(misses) <= 1, f"{name}: intervals missing 0.5: {misses}"


def imbalanced(result: AttackResult, seed: int) -> np.ndarray:
    """Mask over ``result``'s units dropping a random half of its non-members."""
    non_members = np.flatnonzero(~result.unit_member)
    dropped = np.random.default_rng(seed).permutation(non_members)
    keep_units = np.ones(result.unit_id.size, bool)
    keep_units[dropped[: non_members.size // 2]] = False
    return keep_units


def check_imbalance(result: AttackResult, seed: int) -> None:
    kept = imbalanced(result, seed)
    member, score = result.unit_member, result.unit_score
    full, part = unit_metrics(result), unit_metrics(result, kept)
    assert part["n_non_members"] == (~member).sum() // 2
    assert part["n_members"] == full["n_members"] == member.sum()

    # AUC: the mean placement over the kept non-members, which differs from the
    # mean over all of them by finite-population sampling alone.
    place = placements(member, score)
    kept_place = placements(member[kept], score[kept])
    assert part["auc"] == pytest.approx(kept_place.mean(), abs=1e-12)
    n0, n0_kept = place.size, kept_place.size
    sampling_sd = math.sqrt((1 - n0_kept / n0) * place.var(ddof=1) / n0_kept)
    assert abs(part["auc"] - full["auc"]) <= 4 * sampling_sd + 1e-12

    # Balanced accuracy at the shadow-chosen threshold: the members (and so the
    # TPR) are unchanged; the FPR moves by sampling only.
    flagged = score >= result.unit_threshold[0]
    tpr = flagged[member].mean()
    fpr_full, fpr_kept = flagged[~member].mean(), flagged[kept & ~member].mean()
    assert part["recall"] == pytest.approx(tpr) == full["recall"]
    assert part["balanced_accuracy"] == pytest.approx((tpr + 1 - fpr_kept) / 2)
    rate_sd = math.sqrt((1 - n0_kept / n0) * fpr_full * (1 - fpr_full) / n0_kept)
    assert abs(part["balanced_accuracy"] - full["balanced_accuracy"]) <= (
        4 * rate_sd / 2 + 1e-12
    )

    # Calling every unit a member is right for two units in three once half the
    # non-members are gone; balanced accuracy must still call it chance.
    trivial = score_metrics(
        member[kept],
        score[kept],
        result.unit_id[kept],
        result.unit_turn[kept],
        np.array([score.min()]),
        EVALUATION,
        seed=11,
    )
    assert member[kept].mean() == pytest.approx(2 / 3, abs=0.01)
    assert trivial["balanced_accuracy"] == 0.5
    assert trivial["advantage"] == 0.0


@pytest.mark.parametrize("name", ALL_ATTACKS)
def test_imbalance_leaves_auc_and_balanced_accuracy(memorising, untrained, name):
    _, _, results = memorising
    check_imbalance(results[name], seed=1)
    check_imbalance(untrained[NULL_SEEDS[0]][name], seed=2)
