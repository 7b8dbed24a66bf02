"""`RunOptions`: how one trial's wandb run is opened, wherever it is opened.

The controller makes them (`orchestrator.run.naming`); the worker opens the run with them
(`ExperimentLogger(**options.logger_args())`), or a script's own `wandb.init()` gets them as
`WANDB_*` variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunOptions:
    """One trial's wandb run: ExperimentLogger's arguments, and the sweep's metadata that its
    config gets besides the program's own config."""

    project_name: str
    experiment_name: str
    run_id: str
    dir: str  # the sweep directory: runs go to DIR/wandb, JSONL mirrors to DIR/logs
    mode: str = "offline"
    entity: str | None = None
    tags: list[str] = field(default_factory=list)
    group: str | None = None
    job_type: str = "trial"
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def wandb_dir(self) -> Path:
        return Path(self.dir) / "wandb"

    def logger_args(self) -> dict[str, Any]:
        """ExperimentLogger's keyword arguments, but `config`."""
        return {
            "project_name": self.project_name,
            "experiment_name": self.experiment_name,
            "run_id": self.run_id,
            "dir": self.dir,
            "mode": self.mode,
            "entity": self.entity,
            "tags": list(self.tags),
            "group": self.group,
            "job_type": self.job_type,
        }
