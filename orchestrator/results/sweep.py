"""The public Python API over a sweep's results: `load_sweep("runs/lr")`.

    import orchestrator
    sweep = orchestrator.load_sweep("runs/lr")
    sweep.best.params, sweep.best.value        # the best complete trial
    [t.state for t in sweep.trials]            # every trial, best first
    sweep.to_dataframe()                       # one row per trial (needs pandas)
    sweep.pareto                               # several metrics: the Pareto front

Everything is read from the sweep's store (the same records `status`, `results.json` and the
report show), so it works while the sweep runs, after it ended, and on a pulled copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.plan.rounds import SeedRound, read_rounds
from orchestrator.store.journal import load_study
from orchestrator.store.results import TrialResult, best_first, count_states, trial_results
from orchestrator.store.sweep_file import SweepFile, located, read_sweep_file


@dataclass
class Sweep:
    """A sweep's trials, best first, and how it was run (`info`: its sweep file)."""

    run_dir: Path
    info: SweepFile
    trials: list[TrialResult]  # best first: complete, running, interrupted, pruned, failed
    rounds: list[SeedRound] = dataclasses.field(default_factory=list)  # adaptive seeds' added
    goals: list[str] = dataclasses.field(default_factory=list)  # each objective's, in order
    objectives: list[str] = dataclasses.field(default_factory=list)  # [] for one metric

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def metric(self) -> str:
        return self.info.metric_name

    @property
    def goal(self) -> str:
        return self.info.goal

    @property
    def best(self) -> TrialResult | None:
        """The complete trial with the best value, or None while no trial completed."""
        return next((t for t in self.trials if t.state == "complete"), None)

    @property
    def pareto(self) -> list[TrialResult]:
        """With several metrics (`metrics:`), the complete trials no other complete trial
        beats on every metric, best first by the first; [] for a sweep with one metric."""
        return [t for t in self.trials if t.pareto]

    def counts(self) -> dict[str, int]:
        """How many trials are in each state."""
        return count_states(self.trials)

    def trial(self, number: int) -> TrialResult:
        """The trial with this number."""
        for result in self.trials:
            if result.trial == number:
                return result
        raise KeyError(f"sweep {self.name} has no trial {number}")

    def __iter__(self) -> Iterator[TrialResult]:
        return iter(self.trials)

    def __len__(self) -> int:
        return len(self.trials)

    def to_dataframe(self) -> Any:
        """One row per trial, best first: the record's fields, `param.<key>` per parameter,
        `objective.<name>` per metric and `final.<key>` per final metric. Needs pandas."""
        try:
            import pandas
        except ImportError:
            raise ImportError("Sweep.to_dataframe needs pandas: pip install pandas") from None
        return pandas.DataFrame([flat_row(t) for t in self.trials])


def flat_row(result: TrialResult) -> dict[str, Any]:
    """A trial as one flat row: its scalar fields, `param.<key>`, `objective.<name>` and
    `final.<key>` (its traceback is left to `sweep.trial(n).traceback`)."""
    nested = ("params", "final_metrics", "objectives", "traceback")
    row = {k: v for k, v in result.to_dict().items() if k not in nested}
    row |= {f"param.{k}": v for k, v in result.params.items()}
    row |= {f"objective.{k}": v for k, v in result.objectives.items()}
    row |= {f"final.{k}": v for k, v in result.final_metrics.items()}
    return row


def objective_columns(trials: list[TrialResult]) -> list[str]:
    """The metrics the trials were judged by, in the study's order; [] when a single metric
    makes them no front (the table, files and report then show the one value as before)."""
    if not any(t.pareto is not None for t in trials):
        return []
    return list(dict.fromkeys(name for t in trials for name in t.objectives))


def objective_labels(names: Sequence[str], goals: Sequence[str]) -> list[str]:
    """Each metric with its goal, `val_loss (minimize)` (a metric without one: its name)."""
    return [f"{n} ({goals[i]})" if i < len(goals) else n for i, n in enumerate(names)]


def load_sweep(run_dir: str | Path) -> Sweep:
    """Read a sweep's results from its directory (`runs/<sweep>`)."""
    run_dir = Path(run_dir)
    info = read_sweep_file(run_dir)
    study = load_study(info)
    results = [_located(r, Path(info.run_dir)) for r in trial_results(study, info.goal)]
    goals = [d.name.lower() for d in study.directions]
    trials = best_first(results, info.goal)
    rounds = read_rounds(study.user_attrs)
    return Sweep(run_dir, info, trials, rounds, goals, objective_columns(trials))


def _located(result: TrialResult, run_dir: Path) -> TrialResult:
    """The trial with its directories where they lie now (recorded relative to the sweep)."""
    return dataclasses.replace(
        result,
        checkpoint_dir=result.checkpoint_dir and located(result.checkpoint_dir, run_dir),
        wandb_dir=result.wandb_dir and located(result.wandb_dir, run_dir),
    )
