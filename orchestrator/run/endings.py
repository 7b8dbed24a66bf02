"""How a dispatched trial ended, and the one place that records an ending in the store.

Every way a trial can end goes through `record`: complete (with each objective's value, one
for a sweep with one metric, and its final metrics),
failed (a reason, perhaps a traceback), pruned, interrupted (left RUNNING and released, so
that any controller resumes it from its checkpoint), and discarded (a second copy of a plan
point, which results and status leave out). The controller decides which (`of_result` for a
task that returned, `failed` for one that raised or died too often) and calls `record`.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.store import attrs
from orchestrator.store.batched import set_user_attrs

TRACEBACK_CHARS = 8000


@dataclass(frozen=True)
class Ending:
    """A trial's end as the store records it."""

    state: TrialState | None  # None: interrupted (stays RUNNING, released for a resume)
    values: tuple[float, ...] | None = None  # each objective's, when complete
    reason: str | None = None
    trace: str | None = None
    final_metrics: dict[str, Any] | None = None
    discarded: str | None = None  # why it is no point of the sweep

    @property
    def value(self) -> float | None:
        """The first objective's value (the sweep's metric), when complete."""
        return self.values[0] if self.values else None

    @property
    def name(self) -> str:
        """How the table and status show it: complete, fail, pruned or interrupted."""
        return attrs.INTERRUPTED if self.state is None else self.state.name.lower()


INTERRUPTED = Ending(None)
PRUNED = Ending(TrialState.PRUNED)


def failed(reason: str, trace: str | None = None) -> Ending:
    return Ending(TrialState.FAIL, reason=reason, trace=trace)


def discarded(reason: str) -> Ending:
    return Ending(TrialState.FAIL, discarded=reason)


def stopped(why: str | None) -> Ending:
    """A trial we asked to stop: pruned; interrupted (it checkpointed first); else failed
    for the reason we stopped it (a time limit)."""
    if why == "pruned":
        return PRUNED
    return INTERRUPTED if why in (None, attrs.INTERRUPTED) else failed(why)


def of_result(
    result: dict[str, Any],
    stopping: str | None,
    objectives: Sequence[str],
    reported: Mapping[str, Any] | None = None,
) -> Ending:
    """The end of a task that returned: stopped, diverged (the program says so, or its first
    objective is NaN or infinite), or complete with each objective's final value (the
    program's result, else the last value it reported: `reported`, every name the program
    reported with its last value). A program asked to stop that returns with
    `outcome: completed` (the trainer, asked at its last step) did all its work: it is
    complete, not pruned. No objectives (a sweep without a metric): the program's `value`,
    else 0. An objective never reported, or another objective than the first that is not a
    finite number, fails the trial with the reason."""
    reported = reported or {}
    outcome = result.get("outcome", "completed")
    if outcome == "stopped" or (stopping and result.get("outcome") != "completed"):
        return stopped(stopping)
    if outcome == "diverged":
        return failed("diverged")
    if not objectives:
        return _complete([result.get("value", 0.0)], result)
    values = []
    for index, name in enumerate(objectives):
        value = result.get(name)
        if value is None:
            value = reported.get(name)
        if value is None:
            names = sorted((set(reported) | set(result)) - {"outcome", "step"})
            said = f"; it reported {', '.join(names)}" if names else "; it reported nothing"
            return failed(f"metric {name!r} was never reported{said}")
        finite = isinstance(value, int | float) and math.isfinite(float(value))
        if not finite:
            return failed("diverged" if index == 0 else f"metric {name!r} is {value!r}")
        values.append(value)
    return _complete(values, result)


def _complete(values: list[Any], result: dict[str, Any]) -> Ending:
    final = {k: v for k, v in result.items() if isinstance(v, int | float | str)}
    values = tuple(float(v) for v in values)
    return Ending(TrialState.COMPLETE, values=values, final_metrics=_jsonable(final))


def record(study: optuna.Study, trial: optuna.Trial, ending: Ending, last_step: Any = None) -> None:
    """Write the ending into the store: the trial's attributes, then Optuna's `tell` (an
    interrupted trial is not told: it stays RUNNING, without an owner). `last_step`: the
    step the trial last reported, whatever its metrics (a trial that diverged at step 10
    before its first evaluation ended at step 10, as its live line and wandb run say)."""
    if ending.discarded:
        trial.set_user_attr(attrs.DISCARDED, ending.discarded)
        study.tell(trial, state=TrialState.FAIL)
        return
    ended: dict[str, Any] = {attrs.ENDED_AT: round(time.time(), 3)}
    if isinstance(last_step, int | float) and math.isfinite(last_step):
        ended[attrs.LAST_STEP] = int(last_step)
    if ending.state is None:
        ended[attrs.STATUS_DETAIL] = attrs.INTERRUPTED
        ended[attrs.OWNER] = None  # released: any controller may resume it
        set_user_attrs(trial, ended)
        return
    if ending.reason:
        ended[attrs.FAILURE_REASON] = ending.reason
    if ending.trace:
        ended[attrs.TRACEBACK] = ending.trace[-TRACEBACK_CHARS:]
    if ending.final_metrics is not None:
        ended[attrs.FINAL_METRICS] = ending.final_metrics
    set_user_attrs(trial, ended)
    values = list(ending.values or ()) if ending.state == TrialState.COMPLETE else None
    study.tell(trial, values, state=ending.state)


def reason_of(error: BaseException | None) -> str:
    """An exception as a one-line failure reason."""
    if error is None:
        return "error"
    text = f"{type(error).__name__}: {error}".strip()
    return text.splitlines()[0][:300]


def traceback_of(error: Any) -> str:
    """The traceback of a Ray task's error, as the worker saw it."""
    cause = error.cause
    if cause is not None and cause.__traceback__ is not None:
        return "".join(traceback.format_exception(cause))
    return str(error)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
        for k, v in values.items()
    }
