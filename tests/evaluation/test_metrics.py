"""Metrics checked against brute-force references written here with plain loops."""

import json
import math
import time
from fractions import Fraction

import numpy as np
import pytest

from thermia.evaluation import metrics

# ---------------------------------------------------------------------------
# brute-force references: every candidate threshold, plain Python loops


def ref_candidates(scores):
    """Every threshold worth trying: +inf (no member predicted), then each score."""
    return [math.inf, *sorted(set(scores), reverse=True)]


def ref_rates(labels, scores, weights, threshold):
    """(fpr, tpr) of "member when score >= threshold"."""
    tp = fp = 0
    total_pos = total_neg = 0
    for label, score, weight in zip(labels, scores, weights, strict=True):
        if label == 1:
            total_pos += weight
            if score >= threshold:
                tp += weight
        else:
            total_neg += weight
            if score >= threshold:
                fp += weight
    return fp / total_neg, tp / total_pos


def ref_roc(labels, scores, weights):
    return [(*ref_rates(labels, scores, weights, t), t) for t in ref_candidates(scores)]


def ref_auc(labels, scores, weights):
    """Weighted share of (member, non_member) pairs ordered right; ties half."""
    num = den = 0
    for li, si, wi in zip(labels, scores, weights, strict=True):
        if li != 1:
            continue
        for lj, sj, wj in zip(labels, scores, weights, strict=True):
            if lj != 0:
                continue
            den += wi * wj
            if si > sj:
                num += wi * wj
            elif si == sj:
                num += wi * wj / 2
    return num / den


def ref_tpr_at_fpr(labels, scores, weights, alpha):
    best = 0
    for t in ref_candidates(scores):
        fpr, tpr = ref_rates(labels, scores, weights, t)
        if fpr <= alpha and tpr > best:
            best = tpr
    return best


def ref_choose_threshold(labels, scores, weights):
    """Smallest observed score among those with the best balanced accuracy."""
    values = []
    for t in sorted(set(scores)):
        fpr, tpr = ref_rates(labels, scores, weights, t)
        values.append(((tpr + 1 - fpr) / 2, t))
    best = max(value for value, _ in values)
    return min(t for value, t in values if value >= best - 1e-12)


def ref_threshold_metrics(labels, scores, weights, threshold):
    tp = fp = tn = fn = 0
    for label, score, weight in zip(labels, scores, weights, strict=True):
        predicted = score >= threshold
        if label == 1 and predicted:
            tp += weight
        elif label == 1:
            fn += weight
        elif predicted:
            fp += weight
        else:
            tn += weight
    tpr = tp / (tp + fn)
    fpr = fp / (fp + tn)
    return {
        "tpr": tpr,
        "fpr": fpr,
        "balanced_accuracy": (tpr + 1 - fpr) / 2,
        "advantage": tpr - fpr,
        "precision": tp / (tp + fp) if tp + fp > 0 else math.nan,
        "recall": tpr,
        "accuracy": (tp + tn) / (tp + fp + tn + fn),
    }


def ref_percentile_interval(values, ci):
    return np.quantile(values, [(1 - ci) / 2, 1 - (1 - ci) / 2])


# ---------------------------------------------------------------------------
# data sets

# Ten hand-written scores with ties, five members and five non_members.
HAND_LABELS = [1, 1, 0, 1, 1, 0, 0, 1, 0, 0]
HAND_SCORES = [0.9, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.4, 0.3, 0.1]
# Unit-balancing weights (1 / n_frames) kept exact as fractions in the reference.
HAND_WEIGHTS = [
    Fraction(1, 3),
    Fraction(1, 2),
    Fraction(1, 3),
    Fraction(1),
    Fraction(1, 3),
    Fraction(1, 3),
    Fraction(1, 2),
    Fraction(1, 2),
    Fraction(1, 3),
    Fraction(1, 2),
]


def hand_cases():
    ones = [Fraction(1)] * len(HAND_LABELS)
    return [("unweighted", ones), ("frame_weights", HAND_WEIGHTS)]


def random_case(seed=3, n=160):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    # Few distinct values so that ties are common.
    scores = np.round(rng.normal(size=n) + 0.8 * labels, 1)
    weights = rng.uniform(0.1, 2.0, n)
    return labels, scores, weights


ALPHAS = [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]


# ---------------------------------------------------------------------------
# point metrics against brute force


@pytest.mark.parametrize(("name", "weights"), hand_cases())
def test_hand_written_scores_match_brute_force(name, weights):
    labels, scores = HAND_LABELS, HAND_SCORES
    float_weights = [float(w) for w in weights]

    fpr, tpr, thresholds = metrics.roc_curve(labels, scores, float_weights)
    expected = ref_roc(labels, scores, weights)
    assert len(thresholds) == len(expected)
    for got, want in zip(zip(fpr, tpr, thresholds, strict=True), expected, strict=True):
        assert got[0] == pytest.approx(float(want[0]), abs=1e-12)
        assert got[1] == pytest.approx(float(want[1]), abs=1e-12)
        assert got[2] == want[2]

    assert metrics.auc(labels, scores, float_weights) == pytest.approx(
        float(ref_auc(labels, scores, weights)), abs=1e-12
    )
    for alpha in ALPHAS:
        # Exact decimal alpha: an FPR of exactly 1/10 qualifies for alpha = 0.1.
        want = ref_tpr_at_fpr(labels, scores, weights, Fraction(str(alpha)))
        got = metrics.tpr_at_fpr(labels, scores, alpha, float_weights)
        assert got == pytest.approx(float(want), abs=1e-12), alpha

    assert metrics.choose_threshold(labels, scores, float_weights) == (
        ref_choose_threshold(labels, scores, weights)
    )
    for threshold in [*sorted(set(scores)), 0.0, 0.65]:
        got = metrics.threshold_metrics(labels, scores, threshold, float_weights)
        want = ref_threshold_metrics(labels, scores, weights, threshold)
        assert got == pytest.approx({k: float(v) for k, v in want.items()}, abs=1e-12)


def test_frame_weights_reach_an_fpr_level_exactly():
    # Two member units and ten non_member units, ten frames each, weight 1/10 per
    # frame. The top non_member unit alone is an FPR of exactly 1/10, which
    # floating-point sums of 0.1 overshoot slightly.
    frames = 10
    labels = [1] * frames + [0] * frames + [1] * frames + [0] * (9 * frames)
    unit_scores = [5.0, 4.0, 3.5] + [float(-i) for i in range(9)]
    scores = [score for score in unit_scores for _ in range(frames)]
    weights = [Fraction(1, frames)] * len(labels)
    assert ref_tpr_at_fpr(labels, scores, weights, Fraction(1, 10)) == 1
    float_weights = [1 / frames] * len(labels)
    assert metrics.tpr_at_fpr(labels, scores, 0.1, float_weights) == 1.0
    assert metrics.tpr_at_fpr(labels, scores, 0.0999, float_weights) == pytest.approx(
        0.5
    )


def test_random_weighted_scores_match_brute_force():
    labels, scores, weights = random_case()
    l_list, s_list, w_list = labels.tolist(), scores.tolist(), weights.tolist()

    fpr, tpr, thresholds = metrics.roc_curve(labels, scores, weights)
    expected = ref_roc(l_list, s_list, w_list)
    assert np.allclose(fpr, [e[0] for e in expected], atol=1e-12)
    assert np.allclose(tpr, [e[1] for e in expected], atol=1e-12)
    assert np.array_equal(thresholds, [e[2] for e in expected])

    assert metrics.auc(labels, scores, weights) == pytest.approx(
        ref_auc(l_list, s_list, w_list), abs=1e-12
    )
    for alpha in ALPHAS:
        assert metrics.tpr_at_fpr(labels, scores, alpha, weights) == pytest.approx(
            ref_tpr_at_fpr(l_list, s_list, w_list, alpha), abs=1e-12
        )
    assert metrics.choose_threshold(labels, scores, weights) == (
        ref_choose_threshold(l_list, s_list, w_list)
    )
    for threshold in [-10.0, *sorted(set(s_list))[::3], 0.05]:
        got = metrics.threshold_metrics(labels, scores, threshold, weights)
        want = ref_threshold_metrics(l_list, s_list, w_list, threshold)
        assert got == pytest.approx(want, abs=1e-12)


def test_unweighted_equals_unit_weights():
    labels, scores, _ = random_case(seed=5)
    ones = np.ones(labels.size)
    assert metrics.auc(labels, scores) == metrics.auc(labels, scores, ones)
    assert metrics.tpr_at_fpr(labels, scores, 0.1) == pytest.approx(
        ref_tpr_at_fpr(labels.tolist(), scores.tolist(), [1] * labels.size, 0.1)
    )


def test_empty_prediction_set_gives_nan_precision_with_warning():
    with pytest.warns(RuntimeWarning, match="precision"):
        result = metrics.threshold_metrics(HAND_LABELS, HAND_SCORES, 1.5)
    assert math.isnan(result["precision"])
    assert result["tpr"] == 0.0
    assert result["fpr"] == 0.0


def test_imbalance_moves_accuracy_only():
    labels, scores, _ = random_case(seed=11)
    non_member = labels == 0
    big_labels = np.concatenate([labels, *[labels[non_member]] * 4])
    big_scores = np.concatenate([scores, *[scores[non_member]] * 4])
    threshold = metrics.choose_threshold(labels, scores)

    small = metrics.threshold_metrics(labels, scores, threshold)
    big = metrics.threshold_metrics(big_labels, big_scores, threshold)
    assert metrics.auc(big_labels, big_scores) == pytest.approx(
        metrics.auc(labels, scores), abs=1e-12
    )
    assert big["balanced_accuracy"] == pytest.approx(small["balanced_accuracy"])
    assert abs(big["accuracy"] - small["accuracy"]) > 0.01
    want = ref_threshold_metrics(
        big_labels.tolist(), big_scores.tolist(), [1] * big_labels.size, threshold
    )
    assert big["accuracy"] == pytest.approx(want["accuracy"])
    # Weighting non_members by 5 is the same as replicating them.
    weights = np.where(non_member, 5.0, 1.0)
    weighted = metrics.threshold_metrics(labels, scores, threshold, weights)
    assert weighted == pytest.approx(big)


@pytest.mark.parametrize(
    ("labels", "scores", "weights"),
    [
        ([1, 2, 0], [0.1, 0.2, 0.3], None),
        ([1, 1, 1], [0.1, 0.2, 0.3], None),
        ([1, 0, 0], [0.1, math.nan, 0.3], None),
        ([1, 0, 0], [0.1, 0.2, 0.3], [1.0, -1.0, 1.0]),
        ([1, 0, 0], [0.1, 0.2, 0.3], [1.0, 0.0, 0.0]),
        ([1, 0, 0], [0.1, 0.2], None),
    ],
)
def test_invalid_inputs_are_rejected(labels, scores, weights):
    with pytest.raises(ValueError):
        metrics.roc_curve(labels, scores, weights)


def test_is_resolvable():
    assert metrics.is_resolvable(100, 0.01)
    assert not metrics.is_resolvable(99, 0.01)
    assert metrics.is_resolvable(1000, 0.001)
    assert not metrics.is_resolvable(999, 0.001)
    assert metrics.is_resolvable(10, 0.1)
    assert not metrics.is_resolvable(9, 0.1)
    with pytest.raises(ValueError):
        metrics.is_resolvable(10, 0.0)


# ---------------------------------------------------------------------------
# evaluate and the unit bootstrap


def grouped_case(n_groups, frames_per_group, shift, seed, member_share=0.5):
    """Units with a shared random effect; all frames of a unit share its label."""
    rng = np.random.default_rng(seed)
    unit_label = (rng.random(n_groups) < member_share).astype(int)
    unit_effect = rng.normal(size=n_groups)
    groups = np.repeat(np.arange(n_groups), frames_per_group)
    labels = unit_label[groups]
    scores = unit_effect[groups] + shift * labels + 0.5 * rng.normal(size=groups.size)
    return labels, scores, groups


NUMERIC = ["auc", "balanced_accuracy", "advantage", "precision", "recall"]


def test_evaluate_point_values_intervals_and_json():
    labels, scores, groups = grouped_case(120, 5, shift=1.0, seed=0)
    weights = np.full(labels.size, 0.2)
    threshold = 0.4
    result = metrics.evaluate(
        labels, scores, groups, threshold, sample_weight=weights, n_boot=300
    )
    json.dumps(result, allow_nan=False)

    point = ref_threshold_metrics(
        labels.tolist(), scores.tolist(), [1] * labels.size, threshold
    )
    for name in ["balanced_accuracy", "advantage", "precision", "recall"]:
        assert result[name] == pytest.approx(point[name])
    assert result["auc"] == pytest.approx(metrics.auc(labels, scores))
    assert result["tpr_at_fpr_0.1"] == pytest.approx(
        ref_tpr_at_fpr(labels.tolist(), scores.tolist(), [1] * labels.size, 0.1)
    )
    assert result["threshold"] == threshold
    assert result["n_members"] == len(set(groups[labels == 1].tolist()))
    assert result["n_non_members"] == len(set(groups[labels == 0].tolist()))
    assert result["n_members"] + result["n_non_members"] == 120
    assert result["n_samples"] == labels.size

    for name in [*NUMERIC, "tpr_at_fpr_0.1"]:
        low, high = result[f"{name}_ci_low"], result[f"{name}_ci_high"]
        assert low <= result[name] <= high, name
        assert low < high, name
    assert result["tpr_at_fpr_0.1_resolvable"] is True
    assert result["tpr_at_fpr_0.001"] is None
    assert result["tpr_at_fpr_0.001_resolvable"] is False
    assert result["tpr_at_fpr_0.001_ci_low"] is None
    assert result["tpr_at_fpr_0.001_ci_high"] is None


def test_bootstrap_matches_brute_force_resampling():
    labels, scores, groups = grouped_case(12, 3, shift=0.7, seed=4)
    n_boot, seed, threshold = 150, 9, 0.3
    result = metrics.evaluate(
        labels, scores, groups, threshold, alphas=(0.1,), n_boot=n_boot, seed=seed
    )
    aucs, balanced, skipped = [], [], 0
    for idx in metrics.bootstrap_unit_indices(groups, n_boot, seed=seed):
        lab, sco = labels[idx].tolist(), scores[idx].tolist()
        if 0 not in lab or 1 not in lab:
            skipped += 1
            continue
        aucs.append(ref_auc(lab, sco, [1] * len(lab)))
        balanced.append(
            ref_threshold_metrics(lab, sco, [1] * len(lab), threshold)[
                "balanced_accuracy"
            ]
        )
    assert result["n_boot_skipped"] == skipped
    low, high = ref_percentile_interval(aucs, 0.95)
    assert result["auc_ci_low"] == pytest.approx(low)
    assert result["auc_ci_high"] == pytest.approx(high)
    low, high = ref_percentile_interval(balanced, 0.95)
    assert result["balanced_accuracy_ci_low"] == pytest.approx(low)
    assert result["balanced_accuracy_ci_high"] == pytest.approx(high)


def test_perfect_separation_gives_degenerate_auc_interval():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(40), 4)
    labels = (groups % 2).astype(int)
    scores = labels + 0.4 * rng.random(groups.size)
    result = metrics.evaluate(labels, scores, groups, threshold=0.7, n_boot=200)
    assert result["auc"] == 1.0
    assert (result["auc_ci_low"], result["auc_ci_high"]) == (1.0, 1.0)
    assert result["tpr_at_fpr_0.1"] == 1.0
    assert result["tpr_at_fpr_0.1_ci_low"] == 1.0


def test_random_scores_interval_covers_chance():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(300), 3)
    labels = (groups % 2).astype(int)
    scores = rng.normal(size=groups.size)
    result = metrics.evaluate(labels, scores, groups, threshold=0.0, n_boot=400)
    assert result["auc_ci_low"] < 0.5 < result["auc_ci_high"]
    assert result["advantage_ci_low"] < 0.0 < result["advantage_ci_high"]


@pytest.mark.parametrize(
    ("n_non_member_units", "resolvable"), [(99, False), (100, True)]
)
def test_resolvability_by_distinct_non_member_units(n_non_member_units, resolvable):
    rng = np.random.default_rng(0)
    n_members = 30
    # Two frames per unit: frames must not count as units.
    groups = np.repeat(np.arange(n_members + n_non_member_units), 2)
    labels = (groups < n_members).astype(int)
    scores = rng.normal(size=groups.size) + labels
    result = metrics.evaluate(
        labels, scores, groups, threshold=0.5, alphas=(0.01,), n_boot=50
    )
    assert result["n_non_members"] == n_non_member_units
    assert result["tpr_at_fpr_0.01_resolvable"] is resolvable
    if resolvable:
        assert isinstance(result["tpr_at_fpr_0.01"], float)
        assert result["tpr_at_fpr_0.01_ci_low"] <= result["tpr_at_fpr_0.01"]
    else:
        assert result["tpr_at_fpr_0.01"] is None
        assert result["tpr_at_fpr_0.01_ci_low"] is None


def turns_case():
    """The same 60 units scored in two turns with near-identical scores."""
    rng = np.random.default_rng(6)
    n_units = 60
    unit_label = np.arange(n_units) % 2
    unit_score = rng.normal(size=n_units) + 0.8 * unit_label
    units = np.tile(np.arange(n_units), 2)
    turns = np.repeat([0, 1], n_units)
    scores = unit_score[units] + 0.01 * rng.normal(size=units.size)
    return unit_label[units], scores, units, turns


def test_units_shared_across_turns_are_resampled_together():
    labels, scores, units, turns = turns_case()
    for idx in metrics.bootstrap_unit_indices(units, 30, seed=1):
        counts = np.bincount(idx, minlength=units.size)
        # Both turns of a unit are drawn the same number of times.
        assert np.array_equal(counts[units == units], counts)
        assert np.array_equal(counts[: units.size // 2], counts[units.size // 2 :])
        assert idx.size == units.size

    by_unit = metrics.evaluate(labels, scores, units, 0.4, alphas=(), n_boot=400)
    pairs = [f"{turn}/{unit}" for turn, unit in zip(turns, units, strict=True)]
    by_pair = metrics.evaluate(labels, scores, pairs, 0.4, alphas=(), n_boot=400)
    assert by_unit["auc"] == by_pair["auc"]
    width_unit = by_unit["auc_ci_high"] - by_unit["auc_ci_low"]
    width_pair = by_pair["auc_ci_high"] - by_pair["auc_ci_low"]
    # Treating the two turns as independent units understates the uncertainty
    # by about sqrt(2).
    assert width_unit > 1.2 * width_pair


def test_a_unit_can_be_member_in_one_turn_and_non_member_in_another():
    labels = np.array([1, 1, 0, 0, 0, 0, 1, 1])
    units = np.array(["a", "b", "c", "d", "a", "b", "c", "d"])
    scores = np.array([0.9, 0.7, 0.4, 0.2, 0.3, 0.1, 0.8, 0.6])
    result = metrics.evaluate(labels, scores, units, 0.5, alphas=(0.5,), n_boot=20)
    assert result["n_members"] == 4
    assert result["n_non_members"] == 4
    assert result["tpr_at_fpr_0.5_resolvable"] is True


def test_skipped_replicates_are_counted_and_warned():
    groups = np.repeat(np.arange(10), 2)
    labels = (groups == 0).astype(int)  # a single member unit
    scores = np.linspace(0, 1, groups.size)
    with pytest.warns(RuntimeWarning, match="skipped"):
        result = metrics.evaluate(labels, scores, groups, 0.5, alphas=(), n_boot=200)
    skipped = sum(
        1
        for idx in metrics.bootstrap_unit_indices(groups, 200, seed=0)
        if labels[idx].min() == labels[idx].max()
    )
    assert result["n_boot_skipped"] == skipped > 20


def test_bootstrap_is_seeded_and_fast():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(400), 10)
    labels = (groups % 2).astype(int)
    scores = rng.normal(size=groups.size) + 0.3 * labels
    weights = rng.uniform(0.5, 1.5, groups.size)
    start = time.perf_counter()
    first = metrics.evaluate(labels, scores, groups, 0.1, sample_weight=weights)
    elapsed = time.perf_counter() - start
    second = metrics.evaluate(labels, scores, groups, 0.1, sample_weight=weights)
    other = metrics.evaluate(
        labels, scores, groups, 0.1, sample_weight=weights, n_boot=50, seed=1
    )
    assert first == second
    assert first["auc_ci_low"] != other["auc_ci_low"]
    assert elapsed < 5.0
