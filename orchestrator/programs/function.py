"""A user's Python function as a trial's program: `program: module:function`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import UserError
from orchestrator.programs.base import Program, TrialRequest
from orchestrator.programs.in_process import Prepared, run_in_thread


@dataclass(frozen=True)
class FunctionProgram(Program):
    """`function(config: dict, report, checkpoint_dir) -> dict`, found in the spec's directory
    (or the working directory); the config is the trial's parameters as dotted keys."""

    target: str  # "module:function"

    @property
    def label(self) -> str:
        return f"program {self.target}"

    def wandb_command(self, raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        raise UserError(
            f"program: {self.target} is a Python function; a W&B agent runs a script or a "
            "command (write a script that calls it, or use the shared trainer)"
        )

    def run(self, request: TrialRequest) -> Iterator[dict[str, Any]]:
        return run_in_thread(request, self._prepare)

    def _prepare(self, request: TrialRequest) -> Prepared:
        for path in reversed(request.python_path):
            if path not in sys.path:
                sys.path.insert(0, path)
        module_name, _, function_name = self.target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name or "main")
        return Prepared(function, dict(request.overrides), dict(request.overrides))
