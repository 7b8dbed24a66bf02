"""The plan's points in the study: enqueued once, a second copy found, an existing study
checked before a sweep joins it; and the Optuna distributions a plan's values are stored in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from orchestrator.store.attrs import PLAN_INDEX


def distributions_for_plan(plans: Sequence[dict[str, Any]]) -> dict[str, BaseDistribution]:
    """One Optuna distribution per swept key, covering every value the plan gives it.

    Few distinct values become a categorical; many numbers (a random sweep) become a float
    or int range, log-scaled when they span more than two decades, so that importance and
    plots treat them as numbers.
    """
    values: dict[str, list[Any]] = {}
    for params in plans:
        for key, value in params.items():
            values.setdefault(key, []).append(storable(value))
    dists: dict[str, BaseDistribution] = {}
    for key, seen in values.items():
        distinct = list(dict.fromkeys(seen))
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct)
        if numeric and len(distinct) > 10:
            low, high = min(distinct), max(distinct)
            log = low > 0 and high / low > 100
            if all(isinstance(v, int) for v in distinct):
                dists[key] = IntDistribution(int(low), int(high), log=log)
            else:
                dists[key] = FloatDistribution(float(low), float(high), log=log)
        else:
            dists[key] = CategoricalDistribution(distinct)
    return dists


def storable(value: Any) -> Any:
    """Optuna params hold None, bool, int, float or str; anything else is stored as JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def enqueue_plan(
    study: optuna.Study, plans: Sequence[dict[str, Any]], order: Sequence[int] | None = None
) -> int:
    """Put every planned point not yet in the study into it as a WAITING trial.

    Returns how many were added. A point is identified by its plan index, so running the same
    spec again never queues a point twice. Two controllers starting at once may both queue a
    point; the copy with the higher trial id is discarded when popped (`earlier_twin`).
    Points are enqueued in `order` (their indexes; default index order): Optuna pops the
    WAITING trial with the lowest number first, so that is the order they are dispatched in.
    """
    known = {t.user_attrs.get(PLAN_INDEX) for t in study.get_trials(deepcopy=False)}
    added = 0
    for index in range(len(plans)) if order is None else order:
        if index in known:
            continue
        stored = {key: storable(value) for key, value in plans[index].items()}
        study.enqueue_trial(stored, user_attrs={PLAN_INDEX: index})
        added += 1
    return added


def count_waiting(study: optuna.Study) -> int:
    """How many trials wait to be run (enqueued plan points not yet taken)."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def first_copies(study: optuna.Study) -> dict[int, tuple[int, int]]:
    """The first trial (id, number) of each plan point in the study, read once after the plan
    was enqueued: what `earlier_twin` compares with, so a dispatch scans nothing."""
    first: dict[int, tuple[int, int]] = {}
    for trial in study.get_trials(deepcopy=False):  # in id order: the first copy wins
        index = trial.user_attrs.get(PLAN_INDEX)
        if index is not None and index not in first:
            first[index] = (trial._trial_id, trial.number)
    return first


def earlier_twin(first: dict[int, tuple[int, int]], trial: optuna.Trial) -> int | None:
    """The number of another trial of the same plan point created before `trial`, if any.

    Trial ids follow creation order (the journal's log order; SQLite's one writer at a time).
    `first` was read after this controller enqueued the plan, so it holds every copy created
    before then; a copy created later (another controller enqueueing at the same moment) has
    a higher id than this controller's own copy, which `first` holds. So of several copies
    exactly one, the first, finds no earlier twin. (A server RDB commits concurrent inserts in
    id order too, unless two commits race within microseconds.)
    """
    index = trial.user_attrs.get(PLAN_INDEX)
    trial_id, number = first.get(index, (trial._trial_id, trial.number))
    return number if trial_id < trial._trial_id else None


def attach_problem(
    study: optuna.Study, goals: Sequence[str], plans: Sequence[dict[str, Any]]
) -> str | None:
    """Why an existing study (another sweep's, or plain Optuna's) cannot take this sweep's
    trials, or None: it must have the sweep's objectives, each in its metric's direction,
    and hold no other plan. Nothing of it is changed."""
    if len(study.directions) != len(goals):
        return f"has {len(study.directions)} objectives; the sweep has {len(goals)}"
    directions = [d.name.lower() for d in study.directions]
    if directions != list(goals):
        if len(goals) == 1:
            return f"is to {directions[0]}, but metric.goal is {goals[0]}"
        return f"is to {', '.join(directions)}, but the metrics' goals are {', '.join(goals)}"
    conflict = plan_conflict(study, plans)
    return f"holds another plan: {conflict}; give it a new study_name" if conflict else None


def plan_conflict(study: optuna.Study, plans: Sequence[dict[str, Any]]) -> str | None:
    """How the plan points already in `study` differ from `plans`, or None if they agree."""
    for trial in study.get_trials(deepcopy=False):
        index = trial.user_attrs.get(PLAN_INDEX)
        if index is None:
            continue
        stored = trial.system_attrs.get("fixed_params", trial.params)
        planned = {k: storable(v) for k, v in plans[index].items()} if index < len(plans) else None
        if stored != planned:
            return f"its trial {trial.number} is plan point {index} with {stored}"
    return None
