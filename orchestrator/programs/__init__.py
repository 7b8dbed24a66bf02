"""What a trial runs: the shared trainer, a Python function, or a W&B-style script.

A spec's `program:`/`command:` resolve once, when the spec is loaded, to one `Program`
(`spec.trial_program`); everything that depends on the kind of program is a method of it.
"""

from orchestrator.programs.base import AGENT_ENV, STOP_FILE, Program, TrialRequest
from orchestrator.programs.function import FunctionProgram
from orchestrator.programs.resolve import resolve_program
from orchestrator.programs.script import ScriptProgram
from orchestrator.programs.trainer import TRAINER_NAMES, TrainerProgram

__all__ = [
    "AGENT_ENV",
    "STOP_FILE",
    "TRAINER_NAMES",
    "FunctionProgram",
    "Program",
    "ScriptProgram",
    "TrainerProgram",
    "TrialRequest",
    "resolve_program",
]
