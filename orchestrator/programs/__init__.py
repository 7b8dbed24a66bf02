"""What a trial runs: the shared trainer, a Python function, or a W&B-style script.

A spec's `program:`/`command:` resolve once, when the spec is loaded, to one `Program`
(`spec.trial_program`); everything that depends on the kind of program is a method of it.

Names are imported on first use: a Ray worker's first trial imports only its own program.
"""

from __future__ import annotations

from orchestrator.lazy import lazy_exports

_EXPORTS = {
    "AGENT_ENV": "orchestrator.programs.base",
    "STOP_FILE": "orchestrator.programs.base",
    "Program": "orchestrator.programs.base",
    "TrialRequest": "orchestrator.programs.base",
    "FunctionProgram": "orchestrator.programs.function",
    "resolve_program": "orchestrator.programs.resolve",
    "ScriptProgram": "orchestrator.programs.script",
    "TRAINER_NAMES": "orchestrator.programs.trainer",
    "TrainerProgram": "orchestrator.programs.trainer",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
