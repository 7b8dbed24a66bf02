"""`resolve_program`: a spec's `program:` and `command:` as one Program, decided once."""

from __future__ import annotations

import re
from typing import Any

from orchestrator.programs.base import Program
from orchestrator.programs.function import FunctionProgram
from orchestrator.programs.script import ScriptProgram
from orchestrator.programs.trainer import TRAINER_NAMES, TrainerProgram

CALLABLE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def resolve_program(data: dict[str, Any]) -> Program:
    """The program of normalised spec data: the shared trainer when `program` names it (or
    neither `program` nor `command` is given, or the command runs `-m trainer`), a
    `module:function`, or else a script launched as `wandb agent` would."""
    program, command = data.get("program"), data.get("command")
    text = str(program).strip() if program is not None else ""
    if text in TRAINER_NAMES or (not text and _runs_trainer(command)):
        fixed = data.get("trainer") if isinstance(data.get("trainer"), dict) else {}
        return TrainerProgram(str(data.get("base", "tiny")), dict(fixed))
    if CALLABLE.fullmatch(text) and command is None:
        return FunctionProgram(text)
    paths = data.get("param_paths") or {}
    command = list(command) if isinstance(command, list) else None
    return ScriptProgram(text or None, command, dict(paths))


def _runs_trainer(command: Any) -> bool:
    """No command (the default), or one that runs `python -m trainer`."""
    if not isinstance(command, list):
        return True
    return any(command[i : i + 2] == ["-m", "trainer"] for i in range(len(command)))
