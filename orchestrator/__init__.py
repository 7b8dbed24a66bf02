"""orchestrate: a sweep and ablation orchestrator for ML training.

The public Python API (the `orchestrate` command is `orchestrator.cli`):

    import orchestrator
    sweep = orchestrator.load_sweep("runs/lr")      # a sweep's results, best trial first
    spec = orchestrator.load_spec("sweeps/lr.yaml")  # a validated spec; runs nothing
    logger = orchestrator.ExperimentLogger(...)      # one experiment as a wandb run + JSONL

Names are imported on first use, so `import orchestrator` stays cheap (no Ray, no wandb).
"""

from __future__ import annotations

from orchestrator.lazy import lazy_exports

# Each public name and the module that defines it.
_EXPORTS = {
    "load_sweep": "orchestrator.results.sweep",
    "Sweep": "orchestrator.results.sweep",
    "TrialResult": "orchestrator.store.results",
    "load_spec": "orchestrator.spec.load",
    "SweepSpec": "orchestrator.spec.model",
    "Controller": "orchestrator.run.controller",
    "ExperimentLogger": "orchestrator.tracking.logger",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
