"""A user's training script as a trial's program, launched the way `wandb agent` does.

A W&B sweep names a script (`program: train.py`) and a `command` (default
`${env} ${interpreter} ${program} ${args}`). Each trial runs that command as a subprocess of
its Ray task, in the spec's directory (see `script_run` for what it gets and how its metrics
come back). This module is the spec's side: the command, the trial's arguments as W&B passes
them, and the checks made before anything runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError
from orchestrator.programs.base import Program, TrialRequest
from orchestrator.programs.checkpoint_sync import synced
from orchestrator.programs.imports import top_level_imports
from orchestrator.programs.script_run import CHECKPOINT_DIR_VARIABLE, run_script

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


@dataclass(frozen=True)
class ScriptProgram(Program):
    """`command` (W&B's macros expanded) run in the spec's directory; the script's own
    `wandb.init()` opens the trial's run."""

    program: str | None  # the script's path, relative to the spec's directory
    command: list[str] | None = None  # None: W&B's default command
    param_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)

    opens_own_run = True
    waits_for_verdicts = False  # its reports come from its own process, unawaited

    @property
    def label(self) -> str:
        return f"program {self.program}" if self.program else f"command {' '.join(self.template)}"

    @property
    def template(self) -> list[str]:
        """The command line with its macros, as the spec gives it (or W&B's default)."""
        return list(self.command) if self.command else list(DEFAULT_COMMAND)

    def check_ready(self, spec_path: Path, spec_dir: Path) -> None:
        """Refuse a script that cannot start: no program given, or its file is missing."""
        if "${program}" not in self.template:
            return
        if not self.program:
            raise UserError(
                f"{spec_path}: program: the command runs ${{program}}, but none is given"
            )
        path = Path(spec_dir) / self.program
        if not path.is_file():
            raise UserError(f"{spec_path}: program: no such file: {path}")

    def imports_needed(self, spec_dir: Path) -> dict[str, str]:
        """The script's top-level imports (a Python script's; another program's are not
        knowable), without its own modules beside it or in the spec's directory."""
        if not self.program or not self.program.endswith(".py"):
            return {}
        path = Path(spec_dir) / self.program
        names = top_level_imports(path, [path.parent, Path(spec_dir)])
        return dict.fromkeys(names, self.program)

    def trial_arguments(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """A trial's values keyed as W&B passes them: a nested parameter is one dict value
        under its top-level key (`optimizer: {lr: ...}`), a dotted key stays as written."""
        args: dict[str, Any] = {}
        for key, value in overrides.items():
            path = self.param_paths.get(key, (key,))
            target = args
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = value
        return args

    def wandb_command(self, raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        keys = {key: raw[key] for key in ("program", "command") if key in raw}
        warnings = []
        if "base" in raw:
            warnings.append("base: left out (it configures the shared trainer, not this program)")
        return keys, warnings

    def run(self, request: TrialRequest) -> Iterator[dict[str, Any]]:
        """With a `checkpoints:` store, the script's ORCHESTRATE_CHECKPOINT_DIR is a folder of
        this node's, kept in the store as the script writes it (`programs.checkpoint_sync`)."""
        with synced(request.checkpoint_store, Path(request.checkpoint_dir)) as sync:
            if sync is not None:
                env = {**request.env, CHECKPOINT_DIR_VARIABLE: str(sync.dir)}
                request = dataclasses.replace(request, env=env)
            yield from run_script(request, self.template, self.program)
