"""Running a Python program (the trainer, or a `module:function`) inside the worker's task.

The program runs in a thread so that its metrics stream out while it trains: each call of its
`report` callback is queued, and the task yields what is queued as one `metrics` event. Two
ways to stop it, both through `report` returning True (the trainer then saves a checkpoint
and returns "stopped"): a `STOP` file in the trial's directory (a graceful stop: Ctrl-C at
the controller) and Ray's cancel (pruning), which closes this generator: the program is told
to stop and the task waits for it. The trial's wandb run, when it has one, is opened in the
thread before the program starts and finished after it returns, before the trial ends.
What the program prints goes to the trial's `output.log`, redacted and capped
(`programs.output`), not through wandb's console capture; the log is added to the wandb run.
With a `checkpoints:` store, the program checkpoints into a folder of this node's, synced with
the store (`programs.checkpoint_sync`); each report looks for a new checkpoint to upload.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.programs.base import STOP_FILE, TrialRequest
from orchestrator.programs.checkpoint_sync import CheckpointSync, synced
from orchestrator.programs.output import OUTPUT_FILE, captured_output

CANCEL_GRACE_SECONDS = 60


@dataclass
class Prepared:
    """What a trial calls, with what: made in the trial's thread, so that an import or a
    config error is the trial's error."""

    function: Callable[..., Any]  # train(config, report=..., checkpoint_dir=...)
    config: Any  # what the function receives
    logged_config: dict[str, Any]  # the config as the trial's wandb run records it
    log_result: Callable[[Any, dict[str, Any]], None] | None = None  # (trial log, result)


def run_in_thread(
    request: TrialRequest, prepare: Callable[[TrialRequest], Prepared]
) -> Iterator[dict[str, Any]]:
    """Run the prepared program and yield its `metrics` events, then `finished`; its
    exception is raised here (the controller records it with its traceback)."""
    trial = _TrialThread(request, prepare)
    trial.start()
    try:
        yield from trial.events()
    finally:
        trial.stop_and_wait()


class _TrialThread:
    """One trial's program in its thread, and the queue of what it reported."""

    def __init__(self, request: TrialRequest, prepare: Callable[[TrialRequest], Prepared]):
        self.request, self.prepare = request, prepare
        self.checkpoint_dir = Path(request.checkpoint_dir)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.stop_file = self.checkpoint_dir / STOP_FILE
        self.output_path = self.checkpoint_dir / OUTPUT_FILE
        self.stop = threading.Event()
        self.stopped_by: str | None = None  # why its verdict said stop (Ray's cancel: `stop`)
        self.queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.trial_log: Any = None
        self.checkpoints: CheckpointSync | None = None  # with a `checkpoints:` store
        self.thread = threading.Thread(
            target=self._target, name=f"trial-{request.trial_number}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def report(self, metrics: dict[str, Any]) -> bool:
        """The program's callback: log and queue one report; True asks it to stop (with a
        pruner, at the report the pruner decided on)."""
        if self.trial_log is not None:
            self.trial_log.log_metrics(metrics)
        self.queue.put(("metrics", metrics))
        if self.checkpoints is not None:  # it may have written a checkpoint: upload it
            self.checkpoints.poke()
        if self.request.verdict is not None:
            self.stopped_by = self.stopped_by or self.request.verdict(metrics)
        return bool(self.stopped_by) or self.stop.is_set() or self.stop_file.exists()

    def _target(self) -> None:
        state, result, prepared = "failed", None, None
        try:
            with captured_output(self.output_path, self.request.secrets):
                prepared = self.prepare(self.request)
                self.trial_log = open_trial_log(self.request, prepared.logged_config)
                with synced(self.request.checkpoint_store, self.checkpoint_dir) as sync:
                    self.checkpoints = sync  # the program checkpoints on this node, then
                    value = prepared.function(  # into the store
                        prepared.config,
                        report=self.report,
                        checkpoint_dir=str(sync.dir if sync else self.checkpoint_dir),
                    )
            result = as_result(value)
            pruned = self.stop.is_set() or self.stopped_by == "pruned"
            state = final_state(result, pruned)
            self.queue.put(("finished", result))
        except BaseException as error:  # raised again in the task's main thread
            result = {"reason": f"{type(error).__name__}: {error}"}
            self.queue.put(("error", error))
        finally:
            if self.trial_log is not None:
                self.trial_log.save_file(self.output_path)
                close_trial_log(self.trial_log, state, result or {}, prepared)

    def events(self) -> Iterator[dict[str, Any]]:
        """What the program queued: one `metrics` event per batch of reports, then the end."""
        while True:
            kind, payload = self.queue.get()
            batch = []
            while kind == "metrics":  # drain what is already there: one event per batch
                batch.append(payload)
                try:
                    kind, payload = self.queue.get_nowait()
                except queue.Empty:
                    kind = None
            if batch:
                yield {"event": "metrics", "reports": batch}
            if kind == "finished":
                self.thread.join()  # the trial's wandb run is finished before the trial is
                yield {"event": "finished", "result": payload}
                return
            if kind == "error":
                self.thread.join()
                raise payload

    def stop_and_wait(self) -> None:
        """Ray's cancel (or a close) mid-trial: stop at the next report, and wait for it."""
        if not self.thread.is_alive():
            return
        self.stop.set()
        self.thread.join(timeout=CANCEL_GRACE_SECONDS)
        if self.thread.is_alive():  # a program that does not report must not run on unseen
            os._exit(1)


def open_trial_log(request: TrialRequest, logged_config: dict[str, Any]) -> Any:
    """The trial's wandb run (continued, same id, when the trial is retried or resumed); the
    trial's secrets redacted, and its output kept by `captured_output`, not by wandb."""
    if request.wandb is None:
        return None
    from orchestrator.tracking.logger import ExperimentLogger

    options = request.wandb
    config = {**logged_config, **options.config}
    return ExperimentLogger(
        config=config,
        resume="allow",
        secrets=request.secrets,
        console="off",
        **options.logger_args(),
    )


def close_trial_log(
    trial_log: Any, state: str, result: dict[str, Any], prepared: Prepared | None
) -> None:
    """Final metrics and the trial's final state into the run's summary; finish it."""
    finals = {k: v for k, v in result.items() if isinstance(v, int | float | str) and k != "sample"}
    trial_log.set_summary(state=state, **{f"final/{k}": v for k, v in finals.items()})
    if prepared is not None and prepared.log_result is not None:
        prepared.log_result(trial_log, result)
    trial_log.finish(exit_code=0 if state in ("complete", "pruned", "interrupted") else 1)


def final_state(result: dict[str, Any], pruned: bool) -> str:
    """The trial's end as the worker sees it (the controller's store has the last word)."""
    outcome = result.get("outcome", "completed")
    if outcome == "diverged":
        return "failed: diverged"
    if outcome == "stopped":
        return "pruned" if pruned else "interrupted"
    return "complete"


def as_result(value: Any) -> dict[str, Any]:
    """A program's return value as a result dict: a dict, or a number as `value`."""
    if isinstance(value, dict):
        return value
    if isinstance(value, int | float):
        return {"value": float(value)}
    return {}
