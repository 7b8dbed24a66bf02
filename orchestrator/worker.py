"""The trial as it runs on a Ray worker: call the program, stream its metrics back.

`run_trial` is a Ray generator task. It yields events to the controller:
  {"event": "started", "node": ..., "pid": ..., "cuda_visible_devices": ...}
  {"event": "metrics", "reports": [metrics dict, ...]}   (as the program reports them)
  {"event": "finished", "result": {...}}                  (the program's return value)
An exception in the program propagates: the controller records it with its traceback.

The program runs in a thread of the task so that metrics stream out while it trains. Two
ways to stop it, both through its `report` callback returning True (the trainer then saves
a checkpoint and returns "stopped"): a `STOP` file in the trial's checkpoint directory (a
graceful stop, Ctrl-C at the controller) and Ray's cancel (pruning), which raises
KeyboardInterrupt here.
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
    checkpoint_dir = Path(request.checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    stop_file = checkpoint_dir / STOP_FILE
    stop = threading.Event()
    reports: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def report(metrics: dict[str, Any]) -> bool:
        reports.put(("metrics", metrics))
        return stop.is_set() or stop_file.exists()

    def target() -> None:
        try:
            program = resolve_program(request.program, request.python_path)
            config = program_config(request)
            result = program(config, report=report, checkpoint_dir=str(checkpoint_dir))
            reports.put(("finished", result))
        except BaseException as error:  # re-raised in the task's main thread below
            reports.put(("error", error))

    saved_env = _apply_env(request.env)
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
                yield {"event": "finished", "result": _as_result(payload)}
                return
            if kind == "error":
                raise payload
    except KeyboardInterrupt:  # Ray's cancel: let the program stop at its next report
        stop.set()
        thread.join(timeout=60)
        raise
    finally:
        _restore_env(saved_env)


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


def _apply_env(env: dict[str, str]) -> dict[str, str | None]:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    return saved


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
