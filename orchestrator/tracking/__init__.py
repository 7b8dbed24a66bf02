"""Experiment tracking: the ExperimentLogger (one wandb run per experiment, mirrored to a
local JSONL file), and reading wandb's offline `.wandb` files back.

Names are imported on first use: a spec or a request (`RunOptions`) must not import wandb.
"""

from __future__ import annotations

from orchestrator.lazy import lazy_exports

_EXPORTS = {
    "ExperimentLogger": "orchestrator.tracking.logger",
    "RunOptions": "orchestrator.tracking.run_options",
    "api_key_configured": "orchestrator.tracking.info",
    "find_run_files": "orchestrator.tracking.wandb_records",
    "log_experiment": "orchestrator.tracking.convenience",
    "log_training_experiment": "orchestrator.tracking.convenience",
    "new_run_id": "orchestrator.tracking.info",
    "read_run_history": "orchestrator.tracking.wandb_records",
    "resolve_mode": "orchestrator.tracking.info",
    "wandb_key": "orchestrator.tracking.keys",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
