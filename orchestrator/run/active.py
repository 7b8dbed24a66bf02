"""The controller's records of a sweep in progress: each dispatched trial, and how the run
ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from orchestrator.programs.base import TrialRequest
from orchestrator.run.display import TrialView


@dataclass
class ActiveTrial:
    """A trial the controller has dispatched and not yet told."""

    trial: optuna.Trial
    request: TrialRequest
    view: TrialView
    generator: Any = None
    retries: int = 0
    stopping: str | None = None  # why we asked it to stop: pruned, interrupted, a time limit
    stopped_at: float | None = None  # when a time limit asked it to stop
    began_at: float | None = None  # when its worker started (this controller's clock)
    heard_at: float | None = None  # when it last reported
    result: dict[str, Any] | None = None
    reported: dict[str, Any] = field(default_factory=dict)  # every name it reported: last value
    judged: int = 0  # reports of the metric judged in this attempt (the verdicts' index)


@dataclass
class SweepOutcome:
    run_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    halted: str | None = None  # why dispatching stopped early: the first trials' one failure
    stop_signal: int | None = None  # SIGINT or SIGTERM, when one stopped it
