"""ExperimentLogger: one wandb run per experiment, mirrored line by line to a local JSONL file.

Every call writes one JSON object (`kind`, `step`, `values`, `time`) to
`<dir>/logs/<run_id>.jsonl` and, unless the mode is `disabled`, the same values to a wandb run
under `<dir>/wandb/`. wandb is a guest: an exception from it (at `init` or on any later call)
is logged once as a warning, the wandb run is abandoned, and the JSONL goes on, so logging
never stops a training run.

Metric names map onto wandb sections as `orchestrator.tracking.keys` says.

Resuming (`run_id` + `resume="allow"`): wandb 0.31 offline writes a second run directory with
a new `.wandb` file for the same id, whose own `_step` counter would restart at 0. The logger
passes wandb explicit steps that continue after the previous files' last `_step`, so the
files of one run id hold disjoint steps and read back (`wandb_records.read_run_history`) as
one history; the JSONL of the run id is appended to. A SIGKILLed process loses what its
wandb-core had not flushed (often every row), while the JSONL has them all: before the
resumed run's first new row, the rows the earlier wandb files lost are replayed into the new
run from the JSONL, those with a step below that row's (the resumed trainer repeats the
steps after its checkpoint; see run_history). The best validation loss counts them too.

wandb itself is reached through `wandb_guest`: a `disabled` logger imports none of it.

Not thread-safe: one logger is driven by one thread, as the trainer's report callback is.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.tracking import wandb_guest
from orchestrator.tracking.history import earlier_attempts
from orchestrator.tracking.info import (
    ablation_rows,
    ablation_summary,
    model_info,
    new_run_id,
    resolve_mode,
    system_info,
)
from orchestrator.tracking.keys import define_metrics, wandb_key
from orchestrator.tracking.redact import sanitize, secret_env_values
from orchestrator.tracking.wandb_records import wait_for_exit_record

log = logging.getLogger(__name__)


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
        entity: str | None = None,
        secrets: Iterable[str] = (),  # more values to redact, besides `secret_env_values()`
        console: str | None = None,  # wandb's console capture; "off" where the caller keeps it
    ):
        self.project_name = project_name
        self.experiment_name = experiment_name
        self.mode = resolve_mode(mode)
        self.dir = Path(dir or os.environ.get("WANDB_DIR") or ".")
        self.run_id = run_id or new_run_id()
        self.jsonl_path = self.dir / "logs" / f"{self.run_id}.jsonl"
        self._secrets = [*secret_env_values(), *secrets]
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
        self._earlier: list[dict[str, Any]] | None = None  # resuming: the JSONL's earlier rows
        self._lost: list[dict[str, Any]] = []  # those the earlier wandb files do not hold
        self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            self._take_up_earlier_attempts()
        self._jsonl = self.jsonl_path.open("a", buffering=1)  # one write per line
        init_args = dict(
            project=project_name,
            entity=entity,
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
            self._init_wandb(init_args, console)

    def _init_wandb(self, init_args: dict[str, Any], console: str | None) -> None:
        try:
            self.run = wandb_guest.start_run(
                console, mode=self.mode, dir=str(self.dir), **init_args
            )
            define_metrics(self.run)
        except Exception as error:  # wandb's failures must never stop training
            self._drop_wandb(error, "init")

    def _take_up_earlier_attempts(self) -> None:
        """Continue `_step` and the clock where the earlier attempts of this run id ended, and
        keep their JSONL rows for `_catch_up`."""
        wandb_dir = self.dir / "wandb" if self.mode != "disabled" else None
        earlier = earlier_attempts(self.jsonl_path, wandb_dir, self.run_id)
        self._earlier, self._lost = earlier.rows, earlier.lost
        self._wandb_step, self._clock_shift = earlier.next_wandb_step, earlier.elapsed_s

    def _catch_up(self, before: int | None) -> None:
        """Before a resumed run's first new row, at step `before` (None: at finish, or a row
        without a step): count the earlier rows below it towards the best validation loss, and
        replay into wandb those of them that the earlier wandb files lost (module docstring)."""
        kept = [row for row in self._earlier or [] if before is None or row["step"] < before]
        lost = [row for row in self._lost if before is None or row["step"] < before]
        self._earlier, self._lost = None, []
        for row in kept:
            self._track_best(row)
        if self.run is not None and lost:
            steps = [lost[0]["step"], lost[-1]["step"]]
            self._record("replay", None, {"rows": len(lost), "steps": steps})
            for row in lost:
                self._wandb_log(row)

    def _drop_wandb(self, error: BaseException, during: str) -> None:
        """Warn once, abandon the wandb run, and keep the process able to start new runs."""
        reason = f"{type(error).__name__}: {error}"
        log.warning("wandb failed during %s (%s); %s goes on", during, reason, self.jsonl_path)
        self._record("wandb_error", None, {"during": during, "error": repr(error)})
        run, self.run = self.run, None
        wandb_guest.drop_run(run, error)

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
        if self._earlier is not None:
            self._catch_up(step)
        if step is not None:
            row["step"] = step
        row["elapsed_s"] = self._elapsed(row.get("elapsed_s"))
        if "train/loss" in row:
            row["wallclock/train_loss"] = row["train/loss"]
        if "val/loss" in row:
            row["wallclock/val_loss"] = row["val/loss"]
            self._track_best(row)
        row = self._record(kind, step, row)
        self._wandb_log(row)
        return row

    def _track_best(self, row: Mapping[str, Any]) -> None:
        if "val/loss" in row and row["val/loss"] < self.best_val_loss:
            self.best_val_loss, self.best_val_step = float(row["val/loss"]), row.get("step")

    def _wandb_log(self, row: dict[str, Any]) -> None:
        """One history row to wandb, at the next of the logger's explicit wandb steps."""
        if self.run is not None:
            self._wandb("log", self.run.log, row, step=self._wandb_step, commit=True)
            self._wandb_step += 1

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
            artifact = wandb_guest.checkpoint_artifact(self.run_id, metadata)
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
        self._wandb_table("samples/text_generation", columns, self._generations, step)

    def log_table(
        self,
        key: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        step: int | None = None,
    ) -> None:
        """A table (e.g. a sweep's results) as a wandb Table under `key`; the latest logged
        under a key is the one wandb shows. Columns may mix types and hold None."""
        values = {"table": key, "columns": list(columns), "rows": [list(row) for row in rows]}
        values = self._record("table", step, values)
        self._wandb_table(key, values["columns"], values["rows"], step)

    def _wandb_table(
        self, key: str, columns: list[str], rows: list[list[Any]], step: int | None
    ) -> None:
        if self._earlier is not None:  # rows up to a table's step stay
            self._catch_up(None if step is None else step + 1)
        if self.run is None:
            return
        data = [list(row) for row in rows]
        table = self._wandb("table", wandb_guest.table, columns, data)
        if table is not None:
            self._wandb_log({key: table} if step is None else {key: table, "step": step})

    def log_hyperparameter_ablation(
        self,
        ablation_name: str,
        baseline_metrics: Mapping[str, Any],
        ablated_metrics: Mapping[str, Any],
        ablation_config: Mapping[str, Any] | None = None,
        step: int | None = None,
    ) -> list[dict[str, Any]]:
        """Baseline against ablated, per metric: means, stds, absolute and relative deltas.

        Each metric is a number, a `(mean, std)` pair or a dict with `mean`, `std` (across
        seeds) and any more columns (`ablation_rows`). Logs the table `ablation/<name>`, the
        deltas to the summary, and returns the rows (relative delta None at a 0 baseline).
        """
        rows = ablation_rows(ablation_name, baseline_metrics, ablated_metrics)
        record = {"ablation": ablation_name, "config": ablation_config or {}, "rows": rows}
        config = self._record("ablation", step, record)["config"]
        columns = list(rows[0]) if rows else ["ablation", "metric"]
        self._wandb_table(
            f"ablation/{ablation_name}", columns, [list(r.values()) for r in rows], step
        )
        if self.run is not None:
            summary = ablation_summary(ablation_name, config, rows)
            self._wandb("summary", self.run.summary.update, summary)
        return rows

    def log_model_info(self, model: Any) -> dict[str, Any]:
        """Parameter counts and the architecture, into the run's config under `model_info`."""
        return self._update_config("model_info", model_info(model))

    def log_system_info(self) -> dict[str, Any]:
        """Hardware and software versions, into the run's config under `system`."""
        return self._update_config("system", system_info())

    def _update_config(self, key: str, info: dict[str, Any]) -> dict[str, Any]:
        info = self._record(key, None, info)
        self.config[key] = info
        if self.run is not None:
            self._wandb("config", self.run.config.update, {key: info}, allow_val_change=True)
        return info

    def save_file(self, path: Path) -> None:
        """Add a file (e.g. the trial's own `output.log`) to the run's files, as it is now."""
        self._wandb("save", lambda: self.run.save(str(path), str(path.parent), "now", glob=False))

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
        if self._earlier is not None:
            self._catch_up(None)
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
