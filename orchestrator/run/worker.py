"""The trial as it runs on a Ray worker: say where it runs, then run its program.

`run_trial` is a Ray generator task. It yields events to the controller:
  {"event": "started", "node": ..., "pid": ..., "cuda_visible_devices": ..., "gpus": share,
   "gpu_ids": [...]}
  {"event": "metrics", "reports": [metrics dict, ...]}   (as the program reports them)
  {"event": "finished", "result": {...}}                  (the program's return value)
An exception in the program propagates: the controller records it with its traceback.
The program gets its arguments with each `${envvar:NAME}` resolved here (`TrialRequest.resolved`).
How the program runs (in a thread of the task, or as a subprocess) is its own
(`Program.run`), and so is how it is stopped.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

from orchestrator.programs.base import AGENT_ENV, TrialRequest
from orchestrator.run import shipping


@functools.cache
def remote_run_trial() -> Any:
    """The Ray task of `run_trial`, made once: Ray exports a remote function each time one
    is made."""
    import ray

    return ray.remote(run_trial)


def run_trial(request: TrialRequest) -> Iterator[dict[str, Any]]:
    """Run one trial and yield its events (the body of the Ray generator task)."""
    yield started_event()
    request = shipping.as_shipped(request)  # the spec's directory as Ray unpacked it here
    saved_env = _apply_env({key: None for key in AGENT_ENV} | request.env)
    try:
        yield from request.program.run(request.resolved(os.environ))
    finally:
        _restore_env(saved_env)


def started_event() -> dict[str, Any]:
    """Where and when the trial runs: host, Ray node, pid, devices."""
    return {
        "event": "started",
        "node": socket.gethostname(),
        "node_ip": _node_ip(),
        "node_id": _node_id(),
        "pid": os.getpid(),
        "started_at": time.time(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        **_gpus(),
    }


def _gpus() -> dict[str, Any]:
    """The GPUs Ray gave this task: which (`gpu_ids`) and what share of one (`gpus`); none
    outside Ray or without GPUs."""
    try:
        import ray

        context = ray.get_runtime_context()
        share = context.get_assigned_resources().get("GPU")
        ids = [str(i) for i in ray.get_gpu_ids()]
    except Exception:
        return {}
    return {"gpus": share, "gpu_ids": ids} if share else {}


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
    _restore_env(env)
    return saved


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
