"""The trial as it runs on a Ray worker: call the program, stream its metrics back.

`run_trial` is a Ray generator task. It yields events to the controller:
  {"event": "started", "node": ..., "pid": ..., "cuda_visible_devices": ...}
  {"event": "metrics", "reports": [metrics dict, ...]}   (as the program reports them)
  {"event": "finished", "result": {...}}                  (the program's return value)
An exception in the program propagates: the controller records it with its traceback.

The program runs in a thread of the task so that metrics stream out while it trains. Two
ways to stop it, both through its `report` callback returning True (the trainer then saves
a checkpoint and returns "stopped"): a `STOP` file in the trial's checkpoint directory (a
graceful stop, Ctrl-C at the controller) and Ray's cancel (pruning), which ends this
generator: the program is then told to stop, and the task waits for it.
"""

from __future__ import annotations

import importlib
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STOP_FILE = "STOP"
CANCEL_GRACE_SECONDS = 60
# What a `wandb agent` sets for its run; a reused Ray worker must not hand it to the next trial.
AGENT_ENV = ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_RESUME")
TRAINER_PROGRAMS = {None, "", "trainer", "-m trainer", "python -m trainer", "trainer.train:train"}


@dataclass
class TrialRequest:
    """Everything a worker needs to run one trial; plain data, cheap to ship."""

    trial_number: int
    program: str | None  # None: the shared trainer; "module:function": any Python callable
    base: str  # the trainer preset or config file
    overrides: dict[str, Any]
    checkpoint_dir: str
    env: dict[str, str] = field(default_factory=dict)
    python_path: list[str] = field(default_factory=list)  # where a user's module is found
    # The trial's wandb run: ExperimentLogger's arguments (project_name, experiment_name, tags,
    # group, job_type, mode, dir, run_id) plus `config`, the sweep metadata to add to the
    # resolved config. None: no run (the program logs for itself, or logging is off).
    wandb: dict[str, Any] | None = None
    # A script program (see script_program.py): the W&B command with its macros, run in
    # spec_dir with `program` the script's path and `overrides` the params keyed as W&B
    # passes them; its own wandb.init() opens the run that `wandb` describes.
    command: list[str] | None = None
    spec_dir: str = ""


def resolve_program(program: str | None, python_path: list[str] = ()) -> Callable[..., Any]:
    """The callable a trial runs: `train(config, report, checkpoint_dir)`-shaped."""
    for path in reversed(python_path):
        if path not in sys.path:
            sys.path.insert(0, path)
    if program in TRAINER_PROGRAMS:
        from trainer.train import train

        return train
    module_name, _, function_name = str(program).partition(":")
    return getattr(importlib.import_module(module_name), function_name or "main")


def program_config(request: TrialRequest) -> Any:
    """The config object the program receives: the trainer's typed Config, else a dict."""
    if request.program in TRAINER_PROGRAMS:
        from trainer.config import load_config

        return load_config(request.base, request.overrides)
    return dict(request.overrides)


def run_trial(request: TrialRequest) -> Iterator[dict[str, Any]]:
    """Run one trial and yield its events (the body of the Ray generator task)."""
    yield {
        "event": "started",
        "node": socket.gethostname(),
        "node_ip": _node_ip(),
        "node_id": _node_id(),
        "pid": os.getpid(),
        "started_at": time.time(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    if request.command is not None:  # a user's script, launched as `wandb agent` would
        from orchestrator.programs.script import run_script

        yield from run_script(request)
        return
    checkpoint_dir = Path(request.checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    stop_file = checkpoint_dir / STOP_FILE
    stop = threading.Event()
    reports: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def report(metrics: dict[str, Any]) -> bool:
        if trial_log is not None:
            trial_log.log_metrics(metrics)
        reports.put(("metrics", metrics))
        return stop.is_set() or stop_file.exists()

    def target() -> None:
        nonlocal trial_log
        state, result, config = "failed", None, None
        try:
            program = resolve_program(request.program, request.python_path)
            config = program_config(request)
            trial_log = open_trial_log(request, config)
            result = _as_result(program(config, report=report, checkpoint_dir=str(checkpoint_dir)))
            state = _final_state(result, stop.is_set())
            reports.put(("finished", result))
        except BaseException as error:  # re-raised in the task's main thread below
            result = {"reason": f"{type(error).__name__}: {error}"}
            reports.put(("error", error))
        finally:
            if trial_log is not None:
                close_trial_log(trial_log, state, result or {}, config)

    trial_log = None
    saved_env = _apply_env({key: None for key in AGENT_ENV} | request.env)
    thread = threading.Thread(target=target, name=f"trial-{request.trial_number}", daemon=True)
    thread.start()
    try:
        while True:
            kind, payload = reports.get()
            batch = [payload] if kind == "metrics" else []
            while kind == "metrics":  # drain what is already there: one event per batch
                try:
                    kind, payload = reports.get_nowait()
                except queue.Empty:
                    kind = None
                    break
                if kind == "metrics":
                    batch.append(payload)
            if batch:
                yield {"event": "metrics", "reports": batch}
            if kind == "finished":
                thread.join()  # the trial's wandb run is finished before the trial is
                yield {"event": "finished", "result": payload}
                return
            if kind == "error":
                thread.join()
                raise payload
    finally:
        if thread.is_alive():  # Ray's cancel (or close) mid-trial: stop at the next report
            stop.set()
            thread.join(timeout=CANCEL_GRACE_SECONDS)
            if thread.is_alive():  # a program that does not report must not run on unseen
                os._exit(1)
        _restore_env(saved_env)


def open_trial_log(request: TrialRequest, config: Any) -> Any:
    """The trial's wandb run (continued, same id, when the trial is retried or resumed)."""
    if request.wandb is None:
        return None
    from orchestrator.tracking.logger import ExperimentLogger

    options = dict(request.wandb)
    metadata = options.pop("config", {})
    if request.program in TRAINER_PROGRAMS:
        from trainer.config import config_to_dict

        resolved = config_to_dict(config)
    else:
        resolved = dict(config)
    return ExperimentLogger(config={**resolved, **metadata}, resume="allow", **options)


def close_trial_log(trial_log: Any, state: str, result: dict[str, Any], config: Any) -> None:
    """Final and best metrics and the trial's final state into the run's summary; finish it."""
    finals = {k: v for k, v in result.items() if isinstance(v, int | float | str) and k != "sample"}
    trial_log.set_summary(state=state, **{f"final/{k}": v for k, v in finals.items()})
    train = getattr(config, "train", None)
    if result.get("sample") and train is not None:  # the trainer's generated text
        trial_log.log_text_generation(
            prompt=train.sample_prompt,
            generated_text=result["sample"],
            temperature=train.sample_temperature,
            top_p=train.sample_top_p,
            max_tokens=train.sample_tokens,
            step=result.get("step"),
        )
    trial_log.finish(exit_code=0 if state in ("complete", "pruned", "interrupted") else 1)


def _final_state(result: dict[str, Any], cancelled: bool) -> str:
    """The trial's end as the worker sees it (the controller's store has the last word)."""
    outcome = result.get("outcome", "completed")
    if outcome == "diverged":
        return "failed: diverged"
    if outcome == "stopped":
        return "pruned" if cancelled else "interrupted"
    return "complete"


def _as_result(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, int | float):
        return {"value": float(value)}
    return {}


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:
        return None


def _node_ip() -> str | None:
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:
        return None


def _apply_env(env: dict[str, str | None]) -> dict[str, str | None]:
    """Set (or, for None, remove) variables for one trial; returns what to restore."""
    saved = {key: os.environ.get(key) for key in env}
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return saved


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
