"""Experiment tracking: the ExperimentLogger (one wandb run per experiment, mirrored to a
local JSONL file), and reading wandb's offline `.wandb` files back.
"""

from orchestrator.tracking.convenience import log_experiment, log_training_experiment
from orchestrator.tracking.info import api_key_configured, new_run_id, resolve_mode
from orchestrator.tracking.keys import wandb_key
from orchestrator.tracking.logger import ExperimentLogger
from orchestrator.tracking.run_options import RunOptions
from orchestrator.tracking.wandb_records import find_run_files, read_run_history

__all__ = [
    "ExperimentLogger",
    "RunOptions",
    "api_key_configured",
    "find_run_files",
    "log_experiment",
    "log_training_experiment",
    "new_run_id",
    "read_run_history",
    "resolve_mode",
    "wandb_key",
]
