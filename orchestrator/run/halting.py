"""Stopping a sweep whose first trials all fail alike.

When this run's first HALT_AFTER trials all fail for one reason that is not the
configuration's (an import error, a missing metric; not a divergence), the rest would fail
the same way: the controller stops dispatching, and they stay queued for a rerun.
"""

from __future__ import annotations

from typing import Any

from optuna.trial import TrialState

from orchestrator.run.endings import Ending
from orchestrator.tracking.redact import redact_text, secret_values

HALT_AFTER = 3  # trials that failed alike before dispatching stops


class FirstFailures:
    """The reasons this run's first HALT_AFTER trials ended with (None: not a failure)."""

    def __init__(self) -> None:
        self.reasons: list[str | None] = []

    def note(self, ending: Ending, params: dict[str, Any]) -> str | None:
        """Record a trial's ending; the one reason they all failed with, once they have."""
        if len(self.reasons) >= HALT_AFTER or ending.state is None:
            return None
        failed = ending.state == TrialState.FAIL and ending.reason != "diverged"
        reason = redact_text(ending.reason or "", secret_values(params))  # said on the console
        self.reasons.append(reason if failed else None)
        alike = len(self.reasons) == HALT_AFTER and len(set(self.reasons)) == 1
        return self.reasons[0] if alike and self.reasons[0] is not None else None
