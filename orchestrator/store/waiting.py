"""The study's WAITING trials, taken in order without Optuna's scan of the whole study.

`study.ask()` finds a waiting trial by listing every trial of the study (O(n) per ask: at
10,000 trials the scan alone costs more than running a no-op trial). `WaitingQueue` reads
the waiting ones once, then claims them one by one exactly as `ask` does: the storage sets
a trial RUNNING only if it is still WAITING, so a trial another controller took first is
skipped. It is read again only when it runs dry (another controller, or an added round of
seeds, may have queued more).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState


class WaitingQueue:
    """WAITING trials in the order Optuna's `ask` would pop them (lowest number first)."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.ids: deque[int] = deque()
        self.refill()

    def refill(self) -> None:
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        self.ids = deque(t._trial_id for t in waiting)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, distributions: dict[str, Any]) -> optuna.Trial | None:
        """Claim the next waiting trial (None when none is left): set RUNNING, its enqueued
        params set under `distributions`, as `study.ask(distributions)` gives it."""
        storage = self.study._storage
        while self.ids:
            trial_id = self.ids.popleft()
            try:
                if not storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                    continue  # another controller took it
            except UpdateFinishedTrialError:
                continue
            trial = optuna.Trial(self.study, trial_id)
            for name, distribution in distributions.items():
                trial._suggest(name, distribution)
            return trial
        return None
