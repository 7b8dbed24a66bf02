"""`run_cap` met exactly when several controllers share one study (a bayes sweep).

Counting the sweep's trials and then asking for one is a race: N controllers that each count
`run_cap - 1` all ask, and the sweep ends N - 1 trials over its cap. What every Optuna storage
does give is an order: a trial's number is assigned atomically when it is created (the RDB
storage locks the study's row; the journal appends one record), and whatever is created with
it in that one write (its template's user attributes) is there for every reader that sees
the trial. So `ask` creates the trial with its owner already on it, and `over_cap` counts the
sweep's trials numbered below it. That count is final: every lower-numbered trial was created
before ours, and carried its owner from then on. A trial with `run_cap` or more below it is
discarded before it runs (`run.endings.discarded`, left out of results and status).

Why exactly `run_cap` run: a trial is over the cap iff at least `run_cap` trials below it are
not over it. Counting a lower trial that is over the cap (its discard not yet written) only
raises the count of a trial that is itself over the cap by then, so the decision never
depends on who writes first. A bayes sweep's trials are never discarded for another reason,
so no trial that was counted ends up not run.
"""

from __future__ import annotations

import datetime
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from orchestrator.store.attrs import DISCARDED, HEARTBEAT, OWNER


def ask(
    study: optuna.Study,
    distributions: dict[str, BaseDistribution] | None,
    owner: dict[str, Any],
) -> optuna.Trial:
    """A new trial of a bayes sweep, as `study.ask` makes it, created with `owner` (and a
    heartbeat) on it in the same write.

    Optuna's `Study.ask` (5.x) is: drop the study's trial cache, take a waiting trial or
    create one, wrap it in a `Trial`, suggest the fixed distributions. This does the same
    with a template for the trial it creates. It takes no waiting trial: those are a planned
    sweep's (`store.waiting`), or a plain Optuna user's, left to whoever enqueued them."""
    study._thread_local.cached_all_trials = None  # as `ask`: the sampler sees the latest
    template = FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        values=None,
        datetime_start=datetime.datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={OWNER: owner, HEARTBEAT: round(datetime.datetime.now().timestamp(), 1)},
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )
    trial_id = study._storage.create_new_trial(study._study_id, template_trial=template)
    trial = optuna.Trial(study, trial_id)
    for name, distribution in (distributions or {}).items():
        trial._suggest(name, distribution)
    return trial


def counted(trial: FrozenTrial) -> bool:
    """Whether a trial counts towards `run_cap`: an orchestrate controller's (a plain Optuna
    study's own trials do not), not discarded."""
    return OWNER in trial.user_attrs and not trial.user_attrs.get(DISCARDED)


def over_cap(study: optuna.Study, number: int, run_cap: int) -> str | None:
    """Why trial `number` (made by `ask`) is past `run_cap`, or None when it may run."""
    before = sum(1 for t in study.get_trials(deepcopy=False) if t.number < number and counted(t))
    if before < run_cap:
        return None
    return f"past run_cap: {before} of the sweep's trials were created before it"
