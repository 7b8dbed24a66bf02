"""How a trial's end is decided and recorded: the one path every ending takes."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from orchestrator.run import endings
from orchestrator.store import TrialResult, attrs


def test_a_returned_task_ends_by_what_was_asked_of_it_and_what_it_returned():
    of = endings.of_result
    assert of({"loss": 0.5}, None, ["loss"]).state == TrialState.COMPLETE
    assert of({"loss": 0.5}, None, ["loss"]).value == 0.5
    assert of({}, None, ["loss"], {"loss": 0.7}).value == 0.7  # the last reported value
    assert of({"outcome": "diverged"}, None, ["loss"]) == endings.failed("diverged")
    never = of({}, None, ["loss"], {"acc": 0.1})
    assert never.state == TrialState.FAIL
    assert never.reason == "metric 'loss' was never reported; it reported acc"
    assert of({}, None, ["loss"]).reason == "metric 'loss' was never reported; it reported nothing"
    assert of({"loss": math.nan}, None, ["loss"]) == endings.failed("diverged")
    assert of({"loss": 0.5}, "pruned", ["loss"]) == endings.PRUNED
    # Asked to stop at its last step, the trainer says it finished: complete, not pruned.
    finished = of({"outcome": "completed", "loss": 0.5}, "pruned", ["loss"])
    assert (finished.state, finished.value) == (TrialState.COMPLETE, 0.5)
    assert of({"outcome": "stopped"}, None, ["loss"]) == endings.INTERRUPTED
    assert of({"outcome": "stopped"}, "interrupted", ["loss"]).name == "interrupted"
    # No metric: the program's `value`, else 0.
    assert of({"value": 3.0}, None, []).value == 3.0
    assert of({}, None, []).value == 0.0
    final = of({"loss": 0.5, "note": "x", "inf": math.inf, "list": [1]}, None, ["loss"])
    assert final.final_metrics == {"loss": 0.5, "note": "x", "inf": "inf"}


def test_several_metrics_end_with_a_value_for_each_from_the_result_else_the_last_report():
    of = endings.of_result
    both = of({"loss": 0.5, "cost": 2}, None, ["loss", "cost"], {"loss": 0.9, "cost": 7.0})
    assert (both.state, both.values, both.value) == (TrialState.COMPLETE, (0.5, 2.0), 0.5)
    # A metric the result leaves out (or gives as None) is the last value it reported.
    late = of({"loss": 0.5, "cost": None}, None, ["loss", "cost"], {"cost": 7.0, "step": 3})
    assert late.values == (0.5, 7.0)
    assert of({}, None, ["loss", "cost"], {"loss": 0.4, "cost": 1}).values == (0.4, 1.0)
    # The second metric never reported, or not a finite number: failed, saying which.
    never = of({"loss": 0.5}, None, ["loss", "cost"], {"loss": 0.5, "step": 3, "acc": 1})
    assert never.state == TrialState.FAIL and never.values is None
    assert never.reason == "metric 'cost' was never reported; it reported acc, loss"
    assert of({"loss": 0.5, "cost": math.inf}, None, ["loss", "cost"]).reason == (
        "metric 'cost' is inf"
    )
    assert of({"loss": 0.5, "cost": "fast"}, None, ["loss", "cost"]).reason == (
        "metric 'cost' is 'fast'"
    )
    # The first metric's NaN is a divergence, as with one metric.
    assert of({"loss": math.nan, "cost": 1.0}, None, ["loss", "cost"]).reason == "diverged"


def test_record_tells_a_multi_objective_study_every_value():
    study = optuna.create_study(directions=["minimize", "maximize"])
    trial = study.ask()
    ending = endings.of_result({"loss": 0.25, "speed": 9.0}, None, ["loss", "speed"])
    endings.record(study, trial, ending)
    (stored,) = study.get_trials()
    assert stored.state == TrialState.COMPLETE and stored.values == [0.25, 9.0]
    from orchestrator.store import trial_results

    (result,) = trial_results(study)
    assert (result.value, result.objectives, result.pareto) == (
        0.25,
        {"value_0": 0.25, "value_1": 9.0},
        True,
    )


@pytest.fixture
def study():
    return optuna.create_study()


def test_record_writes_each_ending_into_the_store(study):
    complete, failed, pruned, interrupted, discarded = (study.ask() for _ in range(5))
    endings.record(study, complete, endings.of_result({"loss": 0.25}, None, ["loss"]))
    endings.record(study, failed, endings.failed("ValueError: no", "Traceback ..."))
    endings.record(study, pruned, endings.PRUNED)
    interrupted.set_user_attr(attrs.OWNER, {"id": "me"})
    endings.record(study, interrupted, endings.INTERRUPTED)
    endings.record(study, discarded, endings.discarded("duplicate of trial 0"))

    trials = study.get_trials()
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.PRUNED,
        TrialState.RUNNING,  # left for a resume, released by its owner
        TrialState.FAIL,
    ]
    assert trials[0].value == 0.25 and trials[0].user_attrs[attrs.FINAL_METRICS] == {"loss": 0.25}
    assert trials[1].user_attrs[attrs.FAILURE_REASON] == "ValueError: no"
    assert trials[1].user_attrs[attrs.TRACEBACK] == "Traceback ..."
    assert trials[3].user_attrs[attrs.OWNER] is None
    assert trials[3].user_attrs[attrs.STATUS_DETAIL] == attrs.INTERRUPTED
    assert attrs.ENDED_AT not in trials[4].user_attrs
    assert all(attrs.ENDED_AT in t.user_attrs for t in trials[:4])

    # What status and the results show: the discarded copy is no trial of the sweep.
    from orchestrator.store import trial_results

    shown = trial_results(study)
    assert [r.state for r in shown] == ["complete", "fail", "pruned", "interrupted"]
    assert isinstance(shown[0], TrialResult) and shown[0].best == 0.25
