"""Adaptive seeds, fair order and compute accounting, without Ray: the spec, the plan with
its added rounds, the dispatch order, the decision to add a round, and the cost figures."""

from __future__ import annotations

import optuna
import pytest
from conftest import write_spec

from orchestrator import store
from orchestrator.plan import expand
from orchestrator.plan.rounds import (
    SeedRound,
    dispatch_order,
    full_plan,
    largest_plan,
    read_rounds,
)
from orchestrator.results.ablation_stats import paired_comparison, seeds_for_power
from orchestrator.results.costs import compare_costs
from orchestrator.run.adaptive import decide
from orchestrator.run.setup import open_study
from orchestrator.spec import load_spec
from orchestrator.spec.load import SpecError
from orchestrator.store.attrs import SEED_ROUNDS
from orchestrator.store.compute import totals, trial_compute, warm_trials

SPEC = """
    name: adapt
    method: ablation
    program: sweep_programs:seeded_loss
    metric: {name: loss, goal: minimize}
    seeds: {min: 2, max: 4}
    baseline: {x: 1.0}
    ablations:
      clear: {x: 2.0}
      subtle: {seed_effect: 0.2}
"""


@pytest.fixture
def spec(tmp_path):
    return load_spec(write_spec(tmp_path, SPEC))


def test_seeds_min_max_plans_min_seeds_and_keeps_the_range(spec):
    assert spec.seeds == [0, 1] and spec.seed_range == (2, 4)
    assert len(expand(spec)) == 6
    assert sorted({p.seed for p in largest_plan(spec)}) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ("{min: 1, max: 4}", "seeds: needs 2 <= min < max (got min 1, max 4)"),
        ("{min: 3, max: 3}", "seeds: needs 2 <= min < max"),
        ("{min: 2, most: 4}", "seeds: takes min and max, not most"),
        ("{min: 2, max: four}", "seeds: min and max must be whole numbers"),
    ],
)
def test_bad_adaptive_seeds_are_one_line_naming_the_key(tmp_path, seeds, message):
    text = SPEC.replace("{min: 2, max: 4}", seeds)
    with pytest.raises(SpecError) as error:
        load_spec(write_spec(tmp_path, text))
    assert message in str(error.value)
    assert "Traceback" not in str(error.value)


def test_adaptive_seeds_refuse_random_and_bayes(tmp_path):
    text = """
        method: random
        run_cap: 4
        program: sweep_programs:seeded_loss
        metric: {name: loss}
        seeds: {min: 2, max: 4}
        parameters: {x: {min: 0.0, max: 1.0}}
    """
    with pytest.raises(SpecError, match="seeds: adaptive seeds are for ablation and grid"):
        load_spec(write_spec(tmp_path, text))


def test_added_rounds_follow_the_base_plan_and_never_renumber_it(spec):
    base = expand(spec)
    plan = full_plan(spec, [SeedRound(2, ["baseline", "subtle"]), SeedRound(3, ["baseline"])])
    assert plan[: len(base)] == base
    added = [(p.index, p.ablation, p.seed) for p in plan[len(base) :]]
    assert added == [(6, "baseline", 2), (7, "subtle", 2), (8, "baseline", 3)]
    assert plan[7].overrides == {"x": 1.0, "seed_effect": 0.2, "seed": 2}
    assert plan[7].params == {"ablation": "subtle", "seed": 2}


def test_dispatch_order_is_seed_major_and_indexes_stay(spec):
    plan = expand(spec)
    assert [p.index for p in plan] == [0, 1, 2, 3, 4, 5]  # config-major, as before
    order = dispatch_order(plan)
    assert [(plan[i].seed, plan[i].ablation) for i in order] == [
        (0, "baseline"),
        (0, "clear"),
        (0, "subtle"),
        (1, "baseline"),
        (1, "clear"),
        (1, "subtle"),
    ]


def test_study_ask_pops_the_plan_in_the_order_it_was_enqueued(spec):
    study = optuna.create_study()
    plan = expand(spec)
    store.enqueue_plan(study, [p.params for p in plan], dispatch_order(plan))
    asked = [study.ask().user_attrs["plan_index"] for _ in plan]
    assert asked == [0, 2, 4, 1, 3, 5]


def test_a_round_recorded_but_not_enqueued_heals_on_resume(spec, tmp_path):
    """A controller killed between recording a round and enqueuing it: the next one
    rebuilds the plan from the spec and the recorded rounds, and enqueues what is missing."""
    run_dir = tmp_path / "runs" / spec.name
    study, _ = open_study(spec, run_dir, expand(spec), [], 6)
    study.set_user_attr(SEED_ROUNDS, [{"seed": 2, "configs": ["baseline", "subtle"]}])
    again, _ = open_study(spec, run_dir, expand(spec), [], 6)
    indexes = sorted(t.user_attrs["plan_index"] for t in again.get_trials())
    assert indexes == [0, 1, 2, 3, 4, 5, 6, 7]
    assert read_rounds(again.user_attrs) == [SeedRound(2, ["baseline", "subtle"])]
    open_study(spec, run_dir, expand(spec), [], 6)  # once more: nothing is queued twice
    assert len(again.get_trials()) == 8


def _result(number, index, value, state="complete", **extra):
    fields = {"plan_index": index, **extra}
    return store.TrialResult(number, state, {}, value, value, 3, **fields)


def test_decide_adds_a_seed_for_the_baseline_and_the_undecided_only(spec):
    plan = expand(spec)  # 0,1 baseline; 2,3 clear; 4,5 subtle (seeds 0, 1)
    values = [1.0, 1.1, 2.0, 2.1, 1.0, 1.2]
    records = [_result(i, i, v) for i, v in enumerate(values)]
    decision = decide(spec, plan, records, "minimize", [])
    assert decision.comparisons["clear"].verdict == "worse"
    assert decision.undecided == ["subtle"]
    assert decision.next_round == SeedRound(2, ["baseline", "subtle"])
    assert decision.comparisons["subtle"].seeds_for_power is not None

    at_max = [SeedRound(2, ["baseline", "subtle"]), SeedRound(3, ["baseline", "subtle"])]
    assert decide(spec, plan, records, "minimize", at_max).next_round is None


def test_seeds_for_power_matches_the_paired_t_test():
    # Cohen's d 1 and 0.5 need 10 and 34 pairs for 80% power (G*Power, two-sided 5%).
    assert seeds_for_power(1.0, 1.0) == 10
    assert seeds_for_power(-0.5, 1.0) == 34
    assert seeds_for_power(0.0, 1.0) is None
    undecided = paired_comparison([0, 1, 2], {0: 1, 1: 2, 2: 3}, {0: 1.5, 1: 2, 2: 3.2}, "minimize")
    assert undecided.verdict.startswith("not distinguishable") and undecided.seeds_for_power > 3
    decided = paired_comparison([0, 1, 2], {0: 1, 1: 2, 2: 3}, {0: 2, 1: 3.1, 2: 4}, "minimize")
    assert decided.verdict == "worse" and decided.seeds_for_power is None


def test_compute_is_wall_seconds_times_what_was_asked():
    assert trial_compute({"cpus": 2.0, "gpus": 0.0}, 10.0) == (20.0, "cpu-s")
    assert trial_compute({"cpus": 4.0, "gpus": 0.5}, 10.0) == (5.0, "gpu-s")
    trials = [
        _result(0, 0, 1.0, compute_s=30.0, compute_unit="cpu-s"),
        _result(1, 1, 1.0, state="pruned", compute_s=10.0, compute_unit="cpu-s"),
    ]
    found = totals(trials)
    assert (found.seconds, found.pruned_seconds, found.pruned_share) == (40.0, 10.0, 0.25)
    assert "40 cpu-s over 2 trials" in found.line() and "25% on pruned" in found.line()


class _Group:
    def __init__(self, name, trials):
        self.name, self.trials = name, trials


def test_costs_compare_only_warm_trials_and_say_so():
    def run(number, worker, started, elapsed):
        return _result(
            number, number, 1.0, worker=worker, started_at=started, elapsed_s=elapsed,
            compute_s=elapsed, compute_unit="cpu-s",
        )  # fmt: skip

    # Two workers; the first trial on each is cold (10 s), later ones warm (1-2 s).
    records = [run(0, "n:1", 0, 10.0), run(1, "n:2", 0, 10.0), run(2, "n:1", 11, 1.0)]
    records.append(run(3, "n:2", 11, 2.0))
    assert warm_trials(records) == {2, 3}
    fair = compare_costs([_Group("baseline", [0, 2]), _Group("a", [1, 3])], records)
    assert fair.fair and fair.per_arm == 1 and fair.label.startswith("cost: fair")
    assert fair.arms["baseline"].elapsed_s == 1.0 and fair.arms["a"].elapsed_s == 2.0
    assert fair.arms["baseline"].compute_s == 11.0

    cold = compare_costs([_Group("baseline", [0, 1]), _Group("a", [2, 3])], records)
    assert not cold.fair
    assert cold.label == "cost: not comparable (baseline has no complete trial on a warm worker)"
    assert cold.arms["baseline"].elapsed_s is None


def test_no_round_is_decided_while_another_controllers_trial_runs(spec, tmp_path):
    """A killed controller's trial not yet adopted (its owner on another machine looks alive
    for a minute): deciding without it would add a round the sweep may not need."""
    from types import SimpleNamespace

    from orchestrator.run.adaptive import add_round
    from orchestrator.store.attrs import OWNER

    study = optuna.create_study()
    plan = expand(spec)
    store.enqueue_plan(study, [p.params for p in plan])
    for value in [1.0, 1.1, 2.0, 2.1, 1.0]:  # all but subtle's seed 1 have ended
        study.tell(study.ask(), value)
    running = study.ask()
    running.set_user_attr(OWNER, {"id": "other", "machine": "elsewhere", "pid": 1})
    controller = SimpleNamespace(spec=spec, study=study, goal="minimize", plan=plan)
    assert add_round(controller) is False
    assert SEED_ROUNDS not in study.user_attrs


def test_a_grid_compares_each_point_with_the_best_one(tmp_path):
    text = """
        method: grid
        program: sweep_programs:seeded_loss
        metric: {name: loss, goal: minimize}
        seeds: {min: 2, max: 3}
        parameters: {x: {values: [1.0, 1.05, 3.0]}}
    """
    spec = load_spec(write_spec(tmp_path, text))
    plan = expand(spec)  # x=1.0: 0, 1; x=1.05: 2, 3; x=3.0: 4, 5
    records = [_result(i, i, v) for i, v in enumerate([1.0, 1.1, 1.0, 1.2, 3.0, 3.1])]
    decision = decide(spec, plan, records, "minimize", [])
    assert decision.reference == '{"x": 1.0}'
    assert decision.undecided == ['{"x": 1.05}']
    assert decision.next_round == SeedRound(2, ['{"x": 1.0}', '{"x": 1.05}'])
    added = full_plan(spec, [decision.next_round])[6:]
    assert [(p.index, p.params) for p in added] == [
        (6, {"x": 1.0, "seed": 2}),
        (7, {"x": 1.05, "seed": 2}),
    ]


def test_a_grid_with_a_baseline_compares_each_point_with_that_point(tmp_path):
    """`baseline: {x: 3}` names the grid point 3.0 (the grid's value, not the int written):
    the others are compared with it, not with the best, and it runs every added seed."""
    text = """
        method: grid
        program: sweep_programs:seeded_loss
        metric: {name: loss, goal: minimize}
        seeds: {min: 2, max: 3}
        parameters: {x: {values: [1.0, 3.05, 3.0]}}
        baseline: {x: 3}
    """
    spec = load_spec(write_spec(tmp_path, text))
    assert spec.baseline == {"x": 3.0} and isinstance(spec.baseline["x"], float)
    plan = expand(spec)
    records = [_result(i, i, v) for i, v in enumerate([1.0, 1.1, 3.0, 3.2, 3.0, 3.1])]
    decision = decide(spec, plan, records, "minimize", [])
    assert decision.reference == '{"x": 3.0}'
    assert decision.comparisons['{"x": 1.0}'].verdict == "better"
    assert decision.next_round == SeedRound(2, ['{"x": 3.0}', '{"x": 3.05}'])
