"""How a dispatched trial ended, and the one place that records an ending in the store.

Every way a trial can end goes through `record`: complete (with its value and final metrics),
failed (a reason, perhaps a traceback), pruned, interrupted (left RUNNING and released, so
that any controller resumes it from its checkpoint), and discarded (a second copy of a plan
point, which results and status leave out). The controller decides which (`of_result` for a
task that returned, `failed` for one that raised or died too often) and calls `record`.
"""

from __future__ import annotations

import math
import time
import traceback
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
    value: float | None = None  # the metric, when complete
    reason: str | None = None
    trace: str | None = None
    final_metrics: dict[str, Any] | None = None
    discarded: str | None = None  # why it is no point of the sweep

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
    metric: str | None,
    last_value: float | None,
    reported: set[str] | frozenset[str] = frozenset(),
) -> Ending:
    """The end of a task that returned: stopped, diverged (the program says so, or its metric
    is NaN or infinite), or complete with the metric's final value (the program's result,
    else the last value it reported). A program asked to stop that returns with
    `outcome: completed` (the trainer, asked at its last step) did all its work: it is
    complete, not pruned. `reported` are the names the program reported, for the reason when
    the metric is not among them."""
    outcome = result.get("outcome", "completed")
    if outcome == "stopped" or (stopping and result.get("outcome") != "completed"):
        return stopped(stopping)
    if outcome == "diverged":
        return failed("diverged")
    value = result.get(metric) if metric else result.get("value", 0.0)
    if value is None:
        value = last_value
    if value is None:
        names = sorted((set(reported) | set(result)) - {"outcome", "step"})
        said = f"; it reported {', '.join(names)}" if names else "; it reported nothing"
        return failed(f"metric {metric!r} was never reported{said}")
    if not isinstance(value, int | float) or not math.isfinite(float(value)):
        return failed("diverged")
    final = {k: v for k, v in result.items() if isinstance(v, int | float | str)}
    return Ending(TrialState.COMPLETE, value=float(value), final_metrics=_jsonable(final))


def record(study: optuna.Study, trial: optuna.Trial, ending: Ending) -> None:
    """Write the ending into the store: the trial's attributes, then Optuna's `tell` (an
    interrupted trial is not told: it stays RUNNING, without an owner)."""
    if ending.discarded:
        trial.set_user_attr(attrs.DISCARDED, ending.discarded)
        study.tell(trial, state=TrialState.FAIL)
        return
    ended: dict[str, Any] = {attrs.ENDED_AT: round(time.time(), 3)}
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
    value = ending.value if ending.state == TrialState.COMPLETE else None
    study.tell(trial, value, state=ending.state)


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
