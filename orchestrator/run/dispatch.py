"""What the controller sends a worker: which point of the sweep a trial is, and its request.

A trial popped from the study is a plan point (grid, random, ablation: its `plan_index`), a
point the sampler chooses (bayes), or no point at all: a second copy of a plan point that
two controllers enqueued at once, a trial asked for after the plan ran out, or a bayes
trial past `run_cap` (`store.run_cap`: several controllers at the cap at once). An adopted
trial (left RUNNING by a controller that died) keeps its directory and its wandb run.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from orchestrator.plan import search
from orchestrator.plan.expand import PlannedTrial, trainer_overrides
from orchestrator.programs.base import STOP_FILE, TrialRequest
from orchestrator.programs.checkpoint_store import TrialStore, trial_store
from orchestrator.run.naming import run_options
from orchestrator.spec.model import SweepSpec
from orchestrator.store import attrs, run_cap
from orchestrator.store.batched import set_user_attrs
from orchestrator.store.sweep_file import within_sweep
from orchestrator.store.trials import earlier_twin


@dataclass(frozen=True)
class Point:
    """The point of the sweep a trial runs."""

    params: dict[str, Any]  # as shown and stored
    overrides: dict[str, Any]  # applied to the program's config
    planned: PlannedTrial | None  # None for bayes


@dataclass(frozen=True)
class TrialFactory:
    """Makes the requests of one sweep's trials."""

    spec: SweepSpec
    plan: list[PlannedTrial]
    run_dir: Path
    uid: str  # makes wandb run ids unique
    spec_dir: str  # a script runs here; a function's module is found here
    python_path: list[str]
    first_copies: dict[int, tuple[int, int]]  # plan index -> its first trial (`earlier_twin`)

    def point(
        self, study: optuna.Study, trial: optuna.Trial, stored: dict[str, Any], adopted: bool
    ) -> Point | str:
        """The trial's point, or why it is none (then it is discarded). `stored` is the
        trial's user attributes as read once at its dispatch."""
        index = stored.get(attrs.PLAN_INDEX)
        if index is not None and not adopted:
            twin = earlier_twin(self.first_copies, trial)
            if twin is not None:  # two controllers enqueued the plan at once: the first runs
                return f"duplicate of trial {twin}"
        if index is not None:
            planned = self.plan[index]
            return Point(planned.params, planned.overrides, planned)
        if self.plan:
            return "no planned point left to run"  # another controller took the last one
        if self.spec.run_cap and not adopted:  # several controllers at the cap: see run_cap
            over = run_cap.over_cap(study, trial.number, self.spec.run_cap)
            if over:
                return over
        params = search.suggest(trial, self.spec)  # an adopted trial gets its own back
        overrides = trainer_overrides(self.spec, params, self.spec.seeds[0])
        return Point(params, overrides, None)

    def request(
        self, trial: optuna.Trial, stored: dict[str, Any], point: Point, adopted: bool
    ) -> TrialRequest:
        """The worker's request; an adopted trial goes on in its directory and wandb run."""
        checkpoint_dir = self.run_dir / "trials" / f"{trial.number:04d}"
        if adopted and stored.get(attrs.CHECKPOINT_DIR):  # perhaps another controller's
            checkpoint_dir = Path(self.run_dir, stored[attrs.CHECKPOINT_DIR])
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        (checkpoint_dir / STOP_FILE).unlink(missing_ok=True)
        options = run_options(
            self.spec, self.run_dir, self.uid, trial.number, point.params, point.planned
        )
        if adopted and stored.get(attrs.WANDB_RUN_ID):  # the run goes on
            wandb_dir = Path(self.run_dir, stored.get(attrs.WANDB_DIR, options.wandb_dir))
            options = dataclasses.replace(
                options, run_id=stored[attrs.WANDB_RUN_ID], dir=str(wandb_dir.parent)
            )
        program = self.spec.trial_program
        return TrialRequest(
            trial_number=trial.number,
            program=program,
            overrides=program.trial_arguments(point.overrides),
            checkpoint_dir=str(checkpoint_dir),
            python_path=self.python_path,
            spec_dir=self.spec_dir,
            wandb=options,
            checkpoint_store=self.trial_store(trial.number, stored if adopted else {}),
        )

    def trial_store(self, number: int, stored: dict[str, Any]) -> TrialStore | None:
        """The trial's folder in the `checkpoints:` store: an adopted trial keeps its own."""
        if self.spec.checkpoints is None:
            return None
        keep = self.spec.checkpoints.keep
        if stored.get(attrs.CHECKPOINT_STORE):
            return TrialStore(**stored[attrs.CHECKPOINT_STORE], keep=keep)
        return trial_store(self.spec.checkpoints.uri, keep, self.spec.name, self.uid, number)


def record_dispatch(
    trial: optuna.Trial,
    stored: dict[str, Any],
    request: TrialRequest,
    owner: dict[str, Any],
    adopted: bool,
    run_dir: Path | None,
) -> None:
    """Who runs the trial and where its files are (relative to `run_dir` when given); an
    adopted trial keeps its own."""
    if adopted:
        if stored.get(attrs.STATUS_DETAIL):
            trial.set_user_attr(attrs.STATUS_DETAIL, None)
        return

    def recorded(path: str) -> str:
        return within_sweep(path, run_dir) if run_dir else path

    values = {attrs.OWNER: owner, attrs.HEARTBEAT: round(time.time(), 1)}
    values[attrs.CHECKPOINT_DIR] = recorded(request.checkpoint_dir)
    if request.checkpoint_store is not None:
        place = request.checkpoint_store
        values[attrs.CHECKPOINT_STORE] = {"uri": place.uri, "key": place.key}
    if request.wandb is not None:
        values[attrs.WANDB_RUN_ID] = request.wandb.run_id
        values[attrs.WANDB_DIR] = recorded(str(request.wandb.wandb_dir))
    set_user_attrs(trial, values)  # one write
