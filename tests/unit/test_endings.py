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
    assert of({"loss": 0.5}, None, "loss", None).state == TrialState.COMPLETE
    assert of({"loss": 0.5}, None, "loss", None).value == 0.5
    assert of({}, None, "loss", 0.7).value == 0.7  # the last reported value stands in
    assert of({"outcome": "diverged"}, None, "loss", 1.0) == endings.failed("diverged")
    never = of({}, None, "loss", None)
    assert never.state == TrialState.FAIL and "'loss' was never reported" in never.reason
    assert of({"loss": math.nan}, None, "loss", None).state == TrialState.FAIL
    assert of({"loss": 0.5}, "pruned", "loss", None) == endings.PRUNED
    # Asked to stop at its last step, the trainer says it finished: complete, not pruned.
    finished = of({"outcome": "completed", "loss": 0.5}, "pruned", "loss", None)
    assert (finished.state, finished.value) == (TrialState.COMPLETE, 0.5)
    assert of({"outcome": "stopped"}, None, "loss", None) == endings.INTERRUPTED
    assert of({"outcome": "stopped"}, "interrupted", "loss", None).name == "interrupted"
    # No metric: the program's `value`, else 0.
    assert of({"value": 3.0}, None, None, None).value == 3.0
    assert of({}, None, None, None).value == 0.0
    final = of({"loss": 0.5, "note": "x", "inf": math.inf, "list": [1]}, None, "loss", None)
    assert final.final_metrics == {"loss": 0.5, "note": "x", "inf": "inf"}


@pytest.fixture
def study():
    return optuna.create_study()


def test_record_writes_each_ending_into_the_store(study):
    complete, failed, pruned, interrupted, discarded = (study.ask() for _ in range(5))
    endings.record(study, complete, endings.of_result({"loss": 0.25}, None, "loss", None))
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
