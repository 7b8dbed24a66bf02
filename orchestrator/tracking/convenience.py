"""The seed's one-call conveniences around ExperimentLogger: a whole experiment at once, and
a training run's logger with its model and system info already logged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.tracking.logger import ExperimentLogger
from orchestrator.tracking.redact import sanitize


def log_experiment(
    project_name: str,
    experiment_name: str,
    config: Mapping[str, Any] | None = None,
    history: Iterable[Mapping[str, Any]] = (),
    summary: Mapping[str, Any] | None = None,
    **logger_args: Any,
) -> str:
    """Record a whole experiment at once (e.g. results from elsewhere); returns its run id.

    `history` is a sequence of flat metric dicts as `log_metrics` takes them.
    """
    with ExperimentLogger(project_name, experiment_name, config, **logger_args) as logger:
        for metrics in history:
            logger.log_metrics(metrics)
        logger.set_summary(**(summary or {}))
        return logger.run_id


def log_training_experiment(
    config: Mapping[str, Any] | Any,
    model: Any,
    experiment_name: str | None = None,
    tags: Iterable[str] | None = None,
    project_name: str | None = None,
    **logger_args: Any,
) -> ExperimentLogger:
    """Start the logger for a training run, with model and system info already logged.

    Names not given come from the config's `logging` section (`project_name`,
    `experiment_name`, `tags`, `notes`), as in the seed's `config_with_wandb.yaml`.
    """
    plain = sanitize(config)
    settings = plain.get("logging", {}) if isinstance(plain, dict) else {}
    logger_args.setdefault("notes", settings.get("notes"))
    logger = ExperimentLogger(
        project_name=project_name or settings.get("project_name", "orchestrate"),
        experiment_name=experiment_name or settings.get("experiment_name", "training"),
        config=plain,
        tags=tags if tags is not None else settings.get("tags"),
        **logger_args,
    )
    logger.log_model_info(model)
    logger.log_system_info()
    return logger
