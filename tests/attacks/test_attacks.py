"""The sanity ladder for every attack, on seeded synthetic "trained models".

A fake model's true-class margin is ``difficulty of the frame + noise`` plus
``strength`` on the units it trained on, so ``strength > 0`` makes models memorise
and ``strength = 0`` gives logits independent of membership.
"""

import dataclasses

import numpy as np
import pytest

from thermia.attacks import ATTACKS, AttackResult, MembershipView, Turn, run_attack
from thermia.attacks.aggregate import aggregate
from thermia.attacks.rmia import _dominated_fraction

ALL_ATTACKS = ("shokri", "loss", "lira_offline", "lira_online", "rmia")


def run(name, view, turns=None, seed=0):
    """``run_attack`` with a quick Shokri: logistic estimators, 3 pseudo-targets."""
    quick = name == "shokri"
    return run_attack(
        name,
        view,
        one_turn(view) if turns is None else turns,
        {"estimator": "logistic"} if quick else None,
        seed=seed,
        max_pseudo_targets=3 if quick else None,
    )


def fake_view(
    seed,
    scheme="independent",
    n_models=9,
    n_units=200,
    frames_per_unit=3,
    n_classes=2,
    strength=3.0,
    one_column=False,
):
    """Logits of ``n_models`` fake models on every frame, and their keep matrix."""
    rng = np.random.default_rng(seed)
    units = np.repeat(np.arange(n_units), frames_per_unit)
    labels = rng.integers(n_classes, size=n_units)[units]
    keep = np.zeros((n_models, n_units), dtype=bool)
    pool = np.ones((n_models, n_units), dtype=bool)
    if scheme == "independent":
        for m in range(n_models):
            keep[m, rng.permutation(n_units)[: n_units // 2]] = True
    else:
        order = rng.permutation(n_units)
        target_pool, shadow_pool = order[: n_units // 2], order[n_units // 2 :]
        pool[:] = False
        pool[0, target_pool] = True
        pool[1:, shadow_pool] = True
        keep[0, rng.permutation(target_pool)[: target_pool.size // 2]] = True
        for m in range(1, n_models):
            keep[m, rng.permutation(shadow_pool)[: shadow_pool.size // 2]] = True
    difficulty = rng.normal(size=n_units)[units] + 0.5 * rng.normal(size=units.size)
    noise = 0.5 * rng.normal(size=(n_models, units.size))
    margin = 1.0 + difficulty + noise + strength * keep[:, units]
    if one_column:
        logits = np.where(labels == 1, margin, -margin)[:, :, None]
    else:
        logits = rng.normal(scale=0.1, size=(n_models, units.size, n_classes))
        rows = np.arange(units.size)
        logits[:, rows, labels] += margin
    return MembershipView(logits, labels, units, keep, pool)


def one_turn(view):
    return [Turn(0, tuple(range(1, view.n_models)))]


def brute_auc(member, score):
    """AUC by comparing every member with every non-member; ties count one half."""
    pos, neg = score[member][:, None], score[~member][None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def test_aggregate_matches_loops():
    rng = np.random.default_rng(3)
    units = rng.integers(10, 20, size=60)
    scores = rng.normal(size=60)
    for how, fn in (("mean", np.mean), ("max", np.max), ("sum", np.sum)):
        ids, values = aggregate(scores, units, how)
        assert list(ids) == sorted(set(units.tolist()))
        for unit, value in zip(ids, values, strict=True):
            assert value == pytest.approx(fn(scores[units == unit]))
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(scores, units, "median")


def test_dominated_fraction_matches_loops():
    rng = np.random.default_rng(5)
    ratio_z = np.round(rng.uniform(0, 2, size=50), 1)
    unit_z = rng.integers(0, 8, size=50)
    bound_x = np.round(rng.uniform(0, 2, size=30), 1)
    unit_x = rng.integers(0, 9, size=30)
    got = _dominated_fraction(bound_x, unit_x, ratio_z, unit_z)
    for i in range(30):
        other = unit_z != unit_x[i]
        assert got[i] == pytest.approx(np.mean(ratio_z[other] < bound_x[i]))


@pytest.mark.parametrize("name", ALL_ATTACKS)
def test_memorising_models_are_caught(name):
    view = fake_view(10)
    # Two pseudo-targets keep the default Shokri estimator's fits few.
    result = run_attack(name, view, one_turn(view), seed=1, max_pseudo_targets=2)
    member = result.unit_member
    assert brute_auc(member, result.unit_score) > 0.9
    assert (
        result.frame_score[result.member].mean()
        > result.frame_score[~result.member].mean()
    )
    assert result.decisions_source == ("shadows",)
    assert np.array_equal(result.unit_id, np.arange(view.n_units))
    np.testing.assert_array_equal(member, view.keep[0])


@pytest.mark.parametrize("name", ["shokri", "loss", "lira_offline", "rmia"])
def test_disjoint_scheme_is_caught(name):
    view = fake_view(11, scheme="disjoint")
    result = run(name, view, seed=1)
    assert set(result.unit_id.tolist()) == set(np.flatnonzero(view.pool[0]).tolist())
    assert brute_auc(result.unit_member, result.unit_score) > 0.9


@pytest.mark.parametrize("seed", [20, 21, 22])
def test_untrained_models_give_chance(seed):
    # With 100 members and 100 non-members the AUC's null standard deviation is
    # about 0.041, so 0.12 is about three of them.
    view = fake_view(seed, strength=0.0)
    for name in ALL_ATTACKS:
        result = run(name, view, seed=seed)
        assert abs(brute_auc(result.unit_member, result.unit_score) - 0.5) < 0.12, name


def permuted_target(view, seed):
    keep = view.keep.copy()
    keep[0] = np.random.default_rng(seed).permutation(keep[0])
    return dataclasses.replace(view, keep=keep)


@pytest.mark.parametrize("name", ALL_ATTACKS)
def test_decisions_never_read_the_target_membership(name):
    view = fake_view(30)
    shuffled = permuted_target(view, 0)
    assert not np.array_equal(view.keep[0], shuffled.keep[0])
    first = run(name, view, seed=2)
    second = run(name, shuffled, seed=2)
    np.testing.assert_array_equal(first.frame_threshold, second.frame_threshold)
    np.testing.assert_array_equal(first.unit_threshold, second.unit_threshold)
    assert first.aggregation == second.aggregation
    np.testing.assert_array_equal(first.pseudo_score, second.pseudo_score)
    np.testing.assert_array_equal(first.frame_score, second.frame_score)
    for key in first.chosen_params:
        np.testing.assert_array_equal(
            first.chosen_params[key], second.chosen_params[key]
        )
    np.testing.assert_array_equal(second.member, shuffled.keep[0, second.unit])


def test_online_lira_shadow_statistics_ignore_the_target_row():
    view = fake_view(31)
    first = run_attack("lira_online", view, one_turn(view), seed=0)
    for seed in (1, 2):
        second = run_attack("lira_online", permuted_target(view, seed), one_turn(view))
        assert first.aggregation == second.aggregation
        np.testing.assert_array_equal(first.frame_threshold, second.frame_threshold)
        np.testing.assert_array_equal(first.unit_threshold, second.unit_threshold)
        np.testing.assert_array_equal(first.pseudo_score, second.pseudo_score)
        np.testing.assert_array_equal(first.pseudo_member, second.pseudo_member)
        # The target's scores depend on its logits and the shadows' rows only.
        np.testing.assert_array_equal(first.frame_score, second.frame_score)


@pytest.mark.parametrize("name", ALL_ATTACKS)
def test_one_column_binary_gives_identical_scores(name):
    one = fake_view(40, one_column=True)
    margin_logits = one.logits[:, :, 0:1]
    two = dataclasses.replace(
        one, logits=np.concatenate([np.zeros_like(margin_logits), margin_logits], 2)
    )
    first = run(name, one, seed=3)
    second = run(name, two, seed=3)
    np.testing.assert_array_equal(first.frame_score, second.frame_score)
    np.testing.assert_array_equal(first.unit_score, second.unit_score)
    np.testing.assert_array_equal(first.frame_threshold, second.frame_threshold)
    assert brute_auc(first.unit_member, first.unit_score) > 0.9


def test_online_lira_refuses_disjoint_pools():
    view = fake_view(50, scheme="disjoint")
    with pytest.raises(ValueError, match="independent' or 'rotate"):
        run_attack("lira_online", view, one_turn(view))


def test_one_shadow_falls_back_to_defaults():
    view = fake_view(51, n_models=2)
    turns = [Turn(0, (1,))]
    expected = {"shokri": 0.5, "lira_offline": 0.0, "lira_online": 0.0, "rmia": 0.5}
    for name, threshold in expected.items():
        result = run(name, view, turns)
        assert result.decisions_source == ("default",)
        assert result.aggregation == ("mean",)
        assert result.frame_threshold[0] == threshold == result.unit_threshold[0]
        assert result.pseudo_score.size == 0
    # LOSS needs no reference model: its one shadow can still be a pseudo-target.
    assert run_attack("loss", view, turns).decisions_source == ("shadows",)
    no_shadow = run_attack("loss", view, [Turn(0, ())])
    assert no_shadow.decisions_source == ("default",)
    assert no_shadow.frame_threshold[0] == np.median(no_shadow.frame_score)


def test_rotate_gives_one_decision_per_turn():
    view = fake_view(52, n_models=4, n_units=80)
    turns = [Turn(m, tuple(s for s in range(4) if s != m)) for m in range(4)]
    result = run_attack("rmia", view, turns, seed=5)
    assert result.frame_threshold.shape == (4,) == result.chosen_params["a"].shape
    assert len(result.aggregation) == 4
    assert np.array_equal(np.bincount(result.turn), [view.n_frames] * 4)
    for index in range(4):
        here = result.unit_turn == index
        np.testing.assert_array_equal(result.unit_member[here], view.keep[index])
        pseudo_here = result.pseudo_target[result.pseudo_turn == index]
        assert index not in set(pseudo_here.tolist())


def test_shokri_needs_members_and_non_members_per_class():
    view = fake_view(53, n_models=3, n_units=40)
    keep = view.keep.copy()
    class_one_units = np.unique(view.units[view.labels == 1])
    keep[1:, class_one_units] = False
    with pytest.raises(ValueError, match="class 1 has 0 member"):
        run_attack("shokri", dataclasses.replace(view, keep=keep), one_turn(view))


def test_unknown_names_raise():
    view = fake_view(54, n_models=3, n_units=20)
    assert set(ATTACKS) == set(ALL_ATTACKS)
    with pytest.raises(ValueError, match="unknown attack"):
        run_attack("nope", view, one_turn(view))
    with pytest.raises(ValueError, match="unknown parameters"):
        run_attack("loss", view, one_turn(view), {"treshold": 1})


def test_save_load_round_trip(tmp_path):
    view = fake_view(60, n_models=4, n_units=40)
    result = run_attack("rmia", view, one_turn(view), {"n_population": 50}, seed=4)
    path = tmp_path / "scores.h5"
    result.save(path)
    loaded = AttackResult.load(path)
    for item in dataclasses.fields(AttackResult):
        mine, theirs = getattr(result, item.name), getattr(loaded, item.name)
        if isinstance(mine, dict) and item.name != "params":
            assert mine.keys() == theirs.keys()
            for key in mine:
                np.testing.assert_array_equal(mine[key], theirs[key])
        elif isinstance(mine, np.ndarray):
            assert mine.dtype == theirs.dtype
            np.testing.assert_array_equal(mine, theirs)
        else:
            assert mine == theirs, item.name


def test_failed_save_leaves_no_file(tmp_path):
    view = fake_view(61, n_models=3, n_units=20)
    result = run_attack("loss", view, one_turn(view))
    broken = dataclasses.replace(result, params={"estimator": object()})
    path = tmp_path / "scores.h5"
    with pytest.raises(TypeError):
        broken.save(path)
    assert list(tmp_path.iterdir()) == []


def test_decisions_are_best_on_pseudo_targets():
    full = fake_view(70, strength=1.0)
    kept = np.sort(np.random.default_rng(0).permutation(full.n_frames)[:400])
    view = MembershipView(
        full.logits[:, kept], full.labels[kept], full.units[kept], full.keep, full.pool
    )
    result = run_attack("lira_offline", view, one_turn(view), seed=0)
    score, member = result.pseudo_score, result.pseudo_member
    key = result.pseudo_target * view.n_units + view.units[result.pseudo_frame_index]
    assert set(result.pseudo_target.tolist()) == set(range(1, view.n_models))
    counts = {k: np.sum(key == k) for k in set(key.tolist())}
    weight = np.array([1.0 / counts[k] for k in key.tolist()])

    def balanced_accuracy(y, s, w, threshold):
        predicted = s >= threshold
        return (
            w[y & predicted].sum() / w[y].sum() + w[~y & ~predicted].sum() / w[~y].sum()
        ) / 2

    best = max(balanced_accuracy(member, score, weight, t) for t in np.unique(score))
    chosen = balanced_accuracy(member, score, weight, result.frame_threshold[0])
    assert chosen == pytest.approx(best)

    unit_auc, unit_data = {}, {}
    for how, fn in (("mean", np.mean), ("max", np.max), ("sum", np.sum)):
        keys = sorted(counts)
        s = np.array([fn(score[key == k]) for k in keys])
        y = np.array([member[key == k][0] for k in keys])
        unit_auc[how], unit_data[how] = brute_auc(y, s), (y, s)
    assert unit_auc[result.aggregation[0]] == pytest.approx(max(unit_auc.values()))
    y, s = unit_data[result.aggregation[0]]
    ones = np.ones(s.size)
    best = max(balanced_accuracy(y, s, ones, t) for t in np.unique(s))
    assert balanced_accuracy(y, s, ones, result.unit_threshold[0]) == pytest.approx(
        best
    )
