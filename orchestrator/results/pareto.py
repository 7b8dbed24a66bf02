"""A sweep with several metrics (`metrics:`): its Pareto front as the report shows it.

The front is the store's (`TrialResult.pareto`, from Optuna's `best_trials`): the complete
trials that no other complete trial matches or beats on every metric while beating it on
one. The report logs it as the summary run's `pareto_front` table (and summary key), draws
it (`plots.plot_pareto`, the first two metrics) and gives it a section of report.md. A sweep
with one metric has no front: each function here then gives nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.format import format_params
from orchestrator.results import plots
from orchestrator.results.sweep import Sweep, objective_labels
from orchestrator.tracking.logger import ExperimentLogger

PLOT_FILE = "pareto_front.png"


def labels(sweep: Sweep) -> list[str]:
    """Each metric with its goal, `val_loss (minimize)`; [] for a sweep with one metric."""
    return objective_labels(sweep.objectives, sweep.goals)


def front_rows(sweep: Sweep) -> tuple[list[str], list[list[Any]]]:
    """The front as a table, best first by the first metric: the trial, each metric, its
    parameters and wandb run."""
    names = sweep.objectives
    params = list(dict.fromkeys(k for t in sweep.pareto for k in t.params))
    columns = ["trial", *names, *params, "wandb_run"]
    rows = [
        [t.trial, *(t.objectives.get(n) for n in names), *(t.params.get(k) for k in params)]
        + [t.wandb_run]
        for t in sweep.pareto
    ]
    return columns, rows


def log_front(logger: ExperimentLogger, sweep: Sweep) -> None:
    """The summary run's `pareto_front` table, and the front in its summary."""
    if not sweep.objectives:
        return
    columns, rows = front_rows(sweep)
    logger.log_table("pareto_front", columns, rows)
    complete = sum(t.state == "complete" for t in sweep.trials)
    front = {"trials": [t.trial for t in sweep.pareto], "complete": complete}
    logger.set_summary(pareto_front=front)


def plot_front(sweep: Sweep, out: Path) -> Path | None:
    """`report/pareto_front.png`: the complete trials on the first two metrics."""
    named = labels(sweep)
    if len(named) < 2:
        return None
    first, second = sweep.objectives[:2]
    points = [
        (t.trial, t.objectives.get(first), t.objectives.get(second), bool(t.pareto))
        for t in sweep.trials
        if t.state == "complete"
    ]
    return plots.plot_pareto(points, (named[0], named[1]), out / PLOT_FILE)


def front_summary(sweep: Sweep) -> str | None:
    """`3 of 6 complete trials on the front: #4, #1, #0` (best first), or None."""
    if not sweep.objectives:
        return None
    complete = sum(t.state == "complete" for t in sweep.trials)
    members = ", ".join(f"#{t.trial}" for t in sweep.pareto) or "none yet"
    return f"{len(sweep.pareto)} of {complete} complete trials on the front: {members}"


def front_cells(sweep: Sweep) -> tuple[list[str], list[list[Any]]]:
    """The front as report.md's table: the trial, each metric, its parameters in one cell."""
    names = sweep.objectives
    rows = [
        [t.trial, *(t.objectives.get(n) for n in names), format_params(t.params) or "-"]
        for t in sweep.pareto
    ]
    return ["trial", *labels(sweep), "params"], rows
