"""What a trial runs: the `Program` a spec's `program:`/`command:` resolve to, and the
`TrialRequest` a worker gets.

Three kinds, each a subclass (see `orchestrator.programs.resolve_program`): the shared trainer
(`TrainerProgram`), a Python function `module:function` (`FunctionProgram`), and a W&B-style
script run as a subprocess (`ScriptProgram`). Everything that depends on the kind is a method
or an attribute here, so no other module asks which kind a program is.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.programs.checkpoint_store import TrialStore
from orchestrator.tracking.redact import EnvvarNotSet, expand_envvars, secret_values
from orchestrator.tracking.run_options import RunOptions

Problem = tuple[tuple[Any, ...], str]  # (key path in the spec, message)

STOP_FILE = "STOP"  # in a trial's directory: stop at the next report, after a checkpoint
# What a `wandb agent` sets for its run; a reused Ray worker must not hand it to the next trial.
AGENT_ENV = ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_RESUME")


@dataclass
class TrialRequest:
    """Everything a worker needs to run one trial; plain data, cheap to ship."""

    trial_number: int
    program: Program
    overrides: dict[str, Any]  # the trial's arguments, as `program.trial_arguments` made them
    checkpoint_dir: str
    env: dict[str, str] = field(default_factory=dict)
    python_path: list[str] = field(default_factory=list)  # where a user's module is found
    spec_dir: str = ""  # a script runs here
    wandb: RunOptions | None = None  # the trial's wandb run; None: logging is off
    secrets: list[str] = field(default_factory=list)  # kept out of its output (`resolved`)
    # The spec's `checkpoints:` store, this trial's folder in it (None: checkpoints stay in
    # `checkpoint_dir`); see `programs.checkpoint_sync`.
    checkpoint_store: TrialStore | None = None
    # With a pruner: called with each report; why the trial stops at that report, or None
    # (`run.verdicts.VerdictWait`, which waits for the controller's verdict on the metric).
    verdict: Callable[[dict[str, Any]], str | None] | None = None

    def resolved(self, environ: Mapping[str, str]) -> TrialRequest:
        """The request as the program gets it, on the worker as the trial starts: each
        `${envvar:NAME}` in its arguments replaced by NAME's value in `environ` (unset:
        EnvvarNotSet, the trial fails), and `secrets` the values its output must not show."""
        overrides: dict[str, Any] = {}
        used: list[str] = []
        for key, value in self.overrides.items():
            try:
                overrides[key], found = expand_envvars(value, environ)
            except EnvvarNotSet as error:
                raise EnvvarNotSet(f"{key}: {error}", error.name) from None
            used += found
        secrets = secret_values(overrides, used)
        return dataclasses.replace(self, overrides=overrides, secrets=secrets)


class Program(ABC):
    """What every trial of a sweep runs. The defaults suit a program that is not the shared
    trainer; subclasses override what differs."""

    #: How `orchestrate plan` names it.
    label: str = ""
    #: The key a trial's seed is passed under (None: only when the spec has several seeds,
    #: as `seed`).
    seed_key: str | None = None
    #: Whether the program opens the trial's wandb run itself (a script's `wandb.init()`):
    #: then the worker opens none, and the run's options reach the program as variables.
    opens_own_run: bool = False
    #: Whether its reports wait for the pruner's verdict (`TrialRequest.verdict`), so that it
    #: stops at the report the pruner decided on; otherwise Ray's cancel stops it later.
    waits_for_verdicts: bool = True

    def spec_problems(self, data: dict[str, Any]) -> list[Problem]:
        """Problems with the normalised spec data that only this kind of program can see."""
        return []

    def trial_problems(self, trials: list[Any], parameters: dict[str, Any]) -> list[Problem]:
        """Problems with the planned trials' full configurations."""
        return []

    def check_ready(self, spec_path: Path, spec_dir: Path) -> None:
        """Raise UserError when a trial could not start (checked before anything runs)."""
        return None

    def imports_needed(self, spec_dir: Path) -> dict[str, str]:
        """What a trial imports on its worker beyond orchestrate and its runtime: module ->
        the file (or package) that imports it. Every node of a cluster is asked for them
        before the sweep starts (`run.probe`)."""
        return {}

    def seed_overrides(self, seed: int, seed_count: int) -> dict[str, Any]:
        """How a trial gets its seed: under `seed_key`, or `seed` when there are several."""
        if self.seed_key:
            return {self.seed_key: seed}
        return {"seed": seed} if seed_count > 1 else {}

    def iteration_steps(self) -> int:
        """Program steps per W&B hyperband iteration (one metric report per iteration)."""
        return 1

    def trial_arguments(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The trial's overrides as the program takes them."""
        return dict(overrides)

    @abstractmethod
    def wandb_command(self, raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The `program`/`command` keys of a pure W&B sweep config that runs this program, and
        warnings about what W&B leaves out (`orchestrate export-wandb`); UserError when a W&B
        agent cannot run it. `raw` is the spec as written."""

    @abstractmethod
    def run(self, request: TrialRequest) -> Iterator[dict[str, Any]]:
        """On the worker: run the trial and yield its `metrics` and `finished` events."""
