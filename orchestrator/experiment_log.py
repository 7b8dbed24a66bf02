"""ExperimentLogger: one wandb run per experiment, mirrored line by line to a local JSONL file.

Every call writes one JSON object (`kind`, `step`, `values`, `time`) to
`<dir>/logs/<run_id>.jsonl` and, unless the mode is `disabled`, the same values to a wandb run
under `<dir>/wandb/`. wandb is a guest: an exception from it (at `init` or on any later call)
is logged once as a warning, the wandb run is abandoned, and the JSONL goes on, so logging
never stops a training run.

Metric names: the trainer's flat report names map onto wandb sections that chart against the
right x-axis: `train_loss` -> `train/loss`, `val_perplexity` -> `val/perplexity`,
`lr` -> `train/lr`, `tokens_per_s` -> `perf/tokens_per_s`; `step`, `epoch`, `tokens` and
`elapsed_s` stay top-level and serve as step metrics. `train/*`, `val/*`, `perf/*` and
`custom/*` chart against `step`; `wallclock/*` (a copy of the train and validation losses)
against `elapsed_s` seconds; `epoch/*` against `epoch`.

Resuming (`run_id` + `resume="allow"`): wandb 0.31 offline writes a second run directory with
a new `.wandb` file for the same id, whose own `_step` counter would restart at 0. The logger
passes wandb explicit steps that continue after the previous files' last `_step`, so the
files of one run id hold disjoint steps and read back (`wandb_records.read_run_history`) as
one history; the JSONL of the run id is appended to.

Not thread-safe: one logger is driven by one thread, as the trainer's report callback is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import re
import secrets
import string
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import wandb

from orchestrator.redact import sanitize, secret_env_values
from orchestrator.wandb_records import (
    WandbLogError,
    find_run_files,
    summarize_run,
    wait_for_exit_record,
)

log = logging.getLogger(__name__)

MODES = ("online", "offline", "disabled")
TOP_LEVEL_KEYS = {"step", "epoch", "elapsed_s", "tokens"}
PERF_KEYS = {"step_time_s", "tokens_per_s", "memory_mb"}
TRAIN_KEYS = {"lr": "train/lr", "learning_rate": "train/lr", "grad_norm": "train/grad_norm"}


# --- where runs go, and in which mode ------------------------------------------------------


def api_key_configured() -> bool:
    """Whether wandb would find an API key: `WANDB_API_KEY`, or a netrc entry for its host.

    Only the presence of the key is checked; its value is never kept.
    """
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    netrc = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        text = netrc.read_text()
    except OSError:
        return False
    return re.search(rf"(^|\s)machine\s+{re.escape(host)}(\s|$)", text) is not None


def resolve_mode(mode: str | None = None) -> str:
    """The wandb mode to use: `mode`, else `WANDB_MODE`, else online only with an API key."""
    chosen = mode or os.environ.get("WANDB_MODE") or ""
    if not chosen:
        chosen = "online" if api_key_configured() else "offline"
    chosen = {"dryrun": "offline", "run": "online"}.get(chosen, chosen)
    if chosen not in MODES:
        raise ValueError(f"wandb mode {chosen!r} is not one of {', '.join(MODES)}")
    return chosen


def new_run_id() -> str:
    """A fresh run id in wandb's style: 8 lowercase letters and digits."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def wandb_key(name: str, section: str = "") -> str:
    """The wandb history key for a trainer metric name (see the module docstring)."""
    if "/" in name or name in TOP_LEVEL_KEYS:
        return name
    if name in PERF_KEYS:
        return f"perf/{name}"
    if name in TRAIN_KEYS:
        return TRAIN_KEYS[name]
    for prefix in ("train", "val"):
        if name.startswith(prefix + "_"):
            return f"{prefix}/{name.removeprefix(prefix + '_')}"
    return f"{section}/{name}" if section else name


def _mean_std(value: Any) -> tuple[float, float]:
    """A metric given as a number, a (mean, std) pair, or a dict with `mean` and `std`."""
    if isinstance(value, Mapping):
        return float(value["mean"]), float(value.get("std", 0.0))
    if isinstance(value, list | tuple):
        mean, std = value
        return float(mean), float(std)
    return float(value), 0.0


# --- the logger ----------------------------------------------------------------------------


class ExperimentLogger:
    """One experiment as a wandb run (see the module docstring), usable as a context manager."""

    def __init__(
        self,
        project_name: str,
        experiment_name: str,
        config: Mapping[str, Any] | Any | None = None,
        tags: Iterable[str] | None = None,
        notes: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        mode: str | None = None,
        dir: str | Path | None = None,
        run_id: str | None = None,
        resume: str | None = None,
    ):
        self.project_name = project_name
        self.experiment_name = experiment_name
        self.mode = resolve_mode(mode)
        self.dir = Path(dir or os.environ.get("WANDB_DIR") or ".")
        self.run_id = run_id or new_run_id()
        self.jsonl_path = self.dir / "logs" / f"{self.run_id}.jsonl"
        self._secrets = secret_env_values()
        self.config = sanitize(config or {}, self._secrets)
        self.tags = [tag[:64] for tag in (tags or []) if tag]
        self.run: Any = None  # the wandb Run; None when disabled or after wandb failed
        self.finished = False
        self.best_val_loss = math.inf
        self.best_val_step: int | None = None
        self._generations: list[list[Any]] = []
        self._wandb_step = 0
        self._clock_start = time.monotonic()
        self._clock_shift = 0.0  # added to the logger's clock: training seconds before it started

        self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
        self._jsonl = self.jsonl_path.open("a", buffering=1)  # one write per line
        if resume and self.mode != "disabled":
            self._continue_previous_files()
        init_args = dict(
            project=project_name,
            name=experiment_name,
            config=self.config,
            tags=self.tags,
            notes=sanitize(notes, self._secrets),
            group=group,
            job_type=job_type,
            id=self.run_id,
            resume=resume,
        )
        self._record("init", None, {**init_args, "mode": self.mode, "dir": str(self.dir)})
        if self.mode != "disabled":
            self._init_wandb(init_args)

    def _init_wandb(self, init_args: dict[str, Any]) -> None:
        try:
            self.run = wandb.init(
                mode=self.mode, dir=str(self.dir), reinit="create_new", **init_args
            )
            self.run.define_metric("step")
            self.run.define_metric("elapsed_s")
            self.run.define_metric("epoch")
            for section in ("train", "val", "perf", "custom"):
                self.run.define_metric(f"{section}/*", step_metric="step")
            self.run.define_metric("wallclock/*", step_metric="elapsed_s")
            self.run.define_metric("epoch/*", step_metric="epoch")
        except Exception as error:  # wandb's failures must never stop training
            self._drop_wandb(error, "init")

    def _continue_previous_files(self) -> None:
        """Take up `_step` and elapsed time where the earlier files of this run id ended."""
        earlier = find_run_files(self.dir / "wandb", self.run_id)
        if not earlier:
            return
        try:
            history = summarize_run(earlier).history
        except (OSError, WandbLogError) as error:
            log.warning("cannot read the earlier wandb files of run %s: %s", self.run_id, error)
            return
        steps = [row["_step"] for row in history if "_step" in row]
        self._wandb_step = max(steps) + 1 if steps else 0
        elapsed = [row["elapsed_s"] for row in history if "elapsed_s" in row]
        self._clock_shift = elapsed[-1] if elapsed else 0.0

    def _drop_wandb(self, error: BaseException, during: str) -> None:
        """Warn once, abandon the wandb run, and keep the process able to start new runs."""
        reason = f"{type(error).__name__}: {error}"
        log.warning("wandb failed during %s (%s); %s goes on", during, reason, self.jsonl_path)
        self._record("wandb_error", None, {"during": during, "error": repr(error)})
        run, self.run = self.run, None
        if run is not None:
            with contextlib.suppress(Exception):
                run.finish(exit_code=1)
        if isinstance(error, ConnectionError) or "Mailbox" in type(error).__name__:
            # wandb's service process is gone: without a teardown every later init in this
            # process (a reused Ray worker) would fail too.
            with contextlib.suppress(Exception):
                wandb.teardown()

    def _wandb(self, during: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        if self.run is None:
            return None
        try:
            return call(*args, **kwargs)
        except Exception as error:
            self._drop_wandb(error, during)
            return None

    def _record(self, kind: str, step: int | None, values: Any) -> Any:
        """Write one JSONL line; returns `values` sanitized, the form wandb gets too."""
        values = sanitize(values, self._secrets)
        if self._jsonl.closed:
            log.warning("run %s is finished: %s record not written", self.run_id, kind)
            return values
        line = {"kind": kind, "step": step, "time": time.time(), "values": values}
        self._jsonl.write(json.dumps(line) + "\n")
        return values

    def _elapsed(self, reported: float | None) -> float:
        """Seconds of training so far: the trainer's `elapsed_s` where it reports one, else the
        logger's clock, kept in line with the trainer's last report and continued on resume."""
        now = time.monotonic() - self._clock_start
        if reported is None:
            return now + self._clock_shift
        self._clock_shift = reported - now
        return reported

    def _log_row(self, kind: str, row: dict[str, Any], step: int | None) -> dict[str, Any]:
        """Write one history row to the JSONL and to wandb: the one hot path."""
        if step is not None:
            row["step"] = step
        row["elapsed_s"] = self._elapsed(row.get("elapsed_s"))
        if "train/loss" in row:
            row["wallclock/train_loss"] = row["train/loss"]
        if "val/loss" in row:
            row["wallclock/val_loss"] = row["val/loss"]
            if row["val/loss"] < self.best_val_loss:
                self.best_val_loss, self.best_val_step = float(row["val/loss"]), step
        row = self._record(kind, step, row)
        if self.run is not None:
            self._wandb(kind, self.run.log, row, step=self._wandb_step, commit=True)
            self._wandb_step += 1
        return row

    # --- the seed's API --------------------------------------------------------------------

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log one flat dict, e.g. a trainer report (`step` taken from it when not given)."""
        step = metrics.get("step") if step is None else step
        row = {wandb_key(k): v for k, v in metrics.items() if k != "step"}
        self._log_row("metrics", row, step)

    def log_training_step(
        self,
        loss: float,
        learning_rate: float,
        gradient_norm: float,
        step: int,
        epoch: int | None = None,
        **metrics: Any,
    ) -> None:
        """Training loss, learning rate and gradient norm at one optimizer step."""
        row = {"train/loss": loss, "train/lr": learning_rate, "train/grad_norm": gradient_norm}
        row.update({wandb_key(k, "train"): v for k, v in metrics.items()})
        if epoch is not None:
            row["epoch"] = epoch
        self._log_row("train", row, step)

    def log_validation_step(
        self, loss: float, perplexity: float, step: int, epoch: int | None = None, **metrics: Any
    ) -> None:
        """Validation loss and perplexity (and e.g. `accuracy`) at one step."""
        row = {"val/loss": loss, "val/perplexity": perplexity}
        row.update({wandb_key(k, "val"): v for k, v in metrics.items()})
        if epoch is not None:
            row["epoch"] = epoch
        self._log_row("val", row, step)

    def log_epoch(
        self,
        epoch: int,
        train_loss: float,
        val_loss: float | None = None,
        train_metrics: Mapping[str, Any] | None = None,
        val_metrics: Mapping[str, Any] | None = None,
        step: int | None = None,
        epoch_time_s: float | None = None,
    ) -> None:
        """End-of-epoch averages, charted against `epoch`."""
        row: dict[str, Any] = {"epoch": epoch, "epoch/train_loss": train_loss}
        if val_loss is not None:
            row["epoch/val_loss"] = val_loss
        row.update({f"epoch/train_{k}": v for k, v in (train_metrics or {}).items()})
        row.update({f"epoch/val_{k}": v for k, v in (val_metrics or {}).items()})
        if epoch_time_s is not None:
            row["epoch/time_s"] = epoch_time_s
        self._log_row("epoch", row, step)

    def log_custom_metric(self, name: str, value: Any, step: int, **info: Any) -> None:
        """Any other scalar, under `custom/<name>`; `info` goes along as `custom/<name>/<key>`."""
        key = wandb_key(name, "custom")
        row = {key: value, **{f"{key}/{k}": v for k, v in info.items()}}
        self._log_row("custom", row, step)

    def log_checkpoint(
        self,
        model: Any,
        optimizer: Any,
        epoch: int,
        step: int,
        loss: float,
        filepath: str | Path,
        is_best: bool = False,
        additional_metadata: Mapping[str, Any] | None = None,
    ) -> Path:
        """Save model and optimizer state with `torch.save`, and log it as a `model` artifact.

        The artifact is `checkpoint-<run_id>`, aliased `latest`, `step-<step>` and, with
        `is_best`, `best`. Returns the file's path.
        """
        import torch

        filepath = Path(filepath)
        filepath.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"epoch": epoch, "step": step, "loss": float(loss), "is_best": is_best}
        metadata.update(sanitize(additional_metadata or {}, self._secrets))
        state = {"model": model.state_dict(), **metadata}
        if optimizer is not None:
            state["optimizer"] = optimizer.state_dict()
        torch.save(state, filepath)
        self._record("checkpoint", step, {"path": str(filepath), **metadata})
        if self.run is not None:
            aliases = ["latest", f"step-{step}"] + (["best"] if is_best else [])
            artifact = wandb.Artifact(f"checkpoint-{self.run_id}", type="model", metadata=metadata)
            self._wandb("checkpoint", artifact.add_file, str(filepath))
            if self.run is not None:
                self._wandb("checkpoint", self.run.log_artifact, artifact, aliases=aliases)
        return filepath

    def log_text_generation(
        self,
        prompt: str,
        generated_text: str,
        temperature: float,
        top_p: float,
        max_tokens: int,
        step: int,
    ) -> None:
        """A generated sample, as a row of the `samples/text_generation` table (all so far)."""
        values = [step, prompt, generated_text, temperature, top_p, max_tokens]
        columns = ["step", "prompt", "generated_text", "temperature", "top_p", "max_tokens"]
        row = self._record("text_generation", step, dict(zip(columns, values, strict=True)))
        self._generations.append(list(row.values()))
        if self.run is not None:
            table = wandb.Table(columns=columns, data=[list(r) for r in self._generations])
            self._wandb_table("samples/text_generation", table, step)

    def _wandb_table(self, key: str, table: Any, step: int | None) -> None:
        row = {key: table} if step is None else {key: table, "step": step}
        self._wandb("table", self.run.log, row, step=self._wandb_step, commit=True)
        self._wandb_step += 1

    def log_hyperparameter_ablation(
        self,
        ablation_name: str,
        baseline_metrics: Mapping[str, Any],
        ablated_metrics: Mapping[str, Any],
        ablation_config: Mapping[str, Any] | None = None,
        step: int | None = None,
    ) -> list[dict[str, Any]]:
        """Baseline against ablated, per metric: means, stds, absolute and relative deltas.

        Each metric is a number, a `(mean, std)` pair or a dict with `mean` and `std` (across
        seeds). Logs the table `ablation/<name>`, the deltas to the summary, and returns the
        rows. The relative delta is None where the baseline mean is 0.
        """
        missing = sorted(set(baseline_metrics) ^ set(ablated_metrics))
        if missing:
            raise ValueError(
                f"ablation {ablation_name!r}: {missing} not in both baseline and ablated"
            )
        rows = []
        for metric in baseline_metrics:
            base_mean, base_std = _mean_std(baseline_metrics[metric])
            abl_mean, abl_std = _mean_std(ablated_metrics[metric])
            delta = abl_mean - base_mean
            rows.append(
                {
                    "ablation": ablation_name,
                    "metric": metric,
                    "baseline_mean": base_mean,
                    "baseline_std": base_std,
                    "ablated_mean": abl_mean,
                    "ablated_std": abl_std,
                    "abs_delta": delta,
                    "delta_std": math.hypot(base_std, abl_std),
                    "rel_delta": delta / abs(base_mean) if base_mean else None,
                }
            )
        record = {"ablation": ablation_name, "config": ablation_config or {}, "rows": rows}
        config = self._record("ablation", step, record)["config"]
        if self.run is not None:
            columns = list(rows[0]) if rows else ["ablation", "metric"]
            table = wandb.Table(columns=columns, data=[list(r.values()) for r in rows])
            self._wandb_table(f"ablation/{ablation_name}", table, step)
            summary = {f"ablation/{ablation_name}/config": config}
            for r in rows:
                summary[f"ablation/{ablation_name}/{r['metric']}/abs_delta"] = r["abs_delta"]
                summary[f"ablation/{ablation_name}/{r['metric']}/rel_delta"] = r["rel_delta"]
            self._wandb("summary", self.run.summary.update, summary)
        return rows

    def log_model_info(self, model: Any) -> dict[str, Any]:
        """Parameter counts and the architecture, into the run's config under `model_info`."""
        parameters = list(model.parameters())
        info = {
            "class": type(model).__name__,
            "num_params": sum(p.numel() for p in parameters),
            "num_trainable_params": sum(p.numel() for p in parameters if p.requires_grad),
            "architecture": str(model),
        }
        self._update_config("model_info", info)
        return info

    def log_system_info(self) -> dict[str, Any]:
        """Hardware and software versions, into the run's config under `system`."""
        import torch

        info: dict[str, Any] = {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "wandb": wandb.__version__,
            "cpu_count": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "cuda_available": torch.cuda.is_available(),
        }
        if torch.cuda.is_available():
            info["cuda"] = torch.version.cuda
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        self._update_config("system", info)
        return info

    def _update_config(self, key: str, info: dict[str, Any]) -> None:
        info = self._record(key, None, info)
        self.config[key] = info
        if self.run is not None:
            self._wandb("config", self.run.config.update, {key: info}, allow_val_change=True)

    def set_summary(self, **values: Any) -> None:
        """Set run summary values (final and best metrics, the trial's final state)."""
        values = self._record("summary", None, values)
        if self.run is not None:
            self._wandb("summary", self.run.summary.update, values)

    def log_experiment_summary(
        self,
        final_train_loss: float | None = None,
        final_val_loss: float | None = None,
        best_val_loss: float | None = None,
        total_steps: int | None = None,
        training_time_s: float | None = None,
        **extra: Any,
    ) -> None:
        """The experiment's final results, as summary values under `final/`."""
        values = {"train_loss": final_train_loss, "val_loss": final_val_loss, **extra}
        values |= {"best_val_loss": best_val_loss, "total_steps": total_steps}
        values["training_time_s"] = training_time_s
        self.set_summary(**{f"final/{k}": v for k, v in values.items() if v is not None})

    def finish(self, exit_code: int = 0) -> None:
        """Write the best validation loss to the summary and close the run (once)."""
        if self.finished:
            return
        if self.best_val_step is not None:
            self.set_summary(
                **{"best/val_loss": self.best_val_loss, "best/val_step": self.best_val_step}
            )
        self._record("finish", None, {"exit_code": exit_code})
        self.finished = True
        if self.run is not None:
            run_file = Path(self.run.settings.sync_file)
            self._wandb("finish", self.run.finish, exit_code=exit_code)
            if self.run is not None:
                self.run = None
                wait_for_exit_record(run_file)
        self._jsonl.close()

    def __enter__(self) -> ExperimentLogger:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)


# --- convenience functions ------------------------------------------------------------------


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
