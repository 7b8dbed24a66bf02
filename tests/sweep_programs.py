"""Small programs for controller tests and benchmarks, swept as `sweep_programs:<name>`.

Each has the shape of the shared trainer, `fn(config, report, checkpoint_dir) -> dict`, and
checkpoints the way a real trainer does, so resume and retries are tested for real. Tests copy
this file next to their spec: the controller puts the spec's directory on the worker's path.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def noop(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, float]:
    """Reports three metrics and returns at once: measures orchestration overhead."""
    x = float(config.get("x", 0.0))
    for step in range(3):
        report({"step": step, "loss": x + step})
    return {"loss": x + 2}


def steps(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, Any]:
    """Counts `steps` steps of `step_seconds` each, checkpointing the step after every one.

    The loss falls with the step and rises with `x`, so pruning and ranking have something to
    act on. Every start appends a line (pid, resumed step, CUDA_VISIBLE_DEVICES, times) to
    `checkpoint_dir/starts.jsonl` so tests can see retries, resumes and concurrency.
    """
    total = int(config.get("steps", 10))
    step_seconds = float(config.get("step_seconds", 0.05))
    x = float(config.get("x", 1.0))
    state_path = Path(checkpoint_dir) / "state.json"
    start = json.loads(state_path.read_text())["step"] if state_path.exists() else 0
    began = time.time()
    Path(checkpoint_dir, "pid").write_text(str(os.getpid()))
    for step in range(start, total):
        time.sleep(step_seconds)
        loss = x + 1.0 / (step + 1)
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"step": step + 1}))
        os.replace(tmp, state_path)
        # As the trainer: asked to stop at its last step, it has finished.
        if report({"step": step + 1, "loss": loss}) and step + 1 < total:
            _log_start(checkpoint_dir, start, step + 1, began)
            return {"outcome": "stopped", "loss": loss}
    _log_start(checkpoint_dir, start, total, began)
    if config.get("raise"):
        raise ValueError(f"boom at step {total}")
    return {"outcome": "completed", "loss": x + 1.0 / total, "resumed_from_step": start}


def _log_start(checkpoint_dir: str, start: int, end: int, began: float) -> None:
    line = {
        "pid": os.getpid(),
        "resumed_from_step": start,
        "end_step": end,
        "began": began,
        "ended": time.time(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    with open(Path(checkpoint_dir) / "starts.jsonl", "a") as handle:
        handle.write(json.dumps(line) + "\n")


def sleep(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, float]:
    """Sleeps `seconds` and reports once: a trial of known length for utilisation."""
    time.sleep(float(config.get("seconds", 2.0)))
    report({"step": 1, "loss": 0.0})
    return {"loss": 0.0}


def seeded_loss(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, Any]:
    """Reports `steps` losses falling to `x + seed * seed_effect` (`seed_effect` 0.1 unless
    set); diverges (NaN) on `diverge_seed`.

    A final metric that depends only on the config and the seed, so ablation means and
    standard deviations across seeds are known exactly (a different `seed_effect` makes an
    ablation's paired deltas vary by seed); `accuracy` is a second final metric.
    """
    x, seed = float(config.get("x", 1.0)), int(config.get("seed", 0))
    total, per_seed = int(config.get("steps", 3)), float(config.get("seed_effect", 0.1))
    for step in range(1, total + 1):
        time.sleep(float(config.get("step_seconds", 0.0)))
        loss = x + seed * per_seed + (total - step) / 10
        if config.get("diverge_seed") == seed and step == total:
            report({"step": step, "loss": float("nan")})
            return {"outcome": "diverged", "loss": float("nan")}
        report({"step": step, "loss": loss})
    return {"loss": loss, "accuracy": 1 / (1 + loss)}


def trade_off(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, Any]:
    """Two metrics that pull apart: `loss = x + y` (minimize) and `speed = 10 * (x - y)`
    (maximize). At y = 0 every x is a trade-off (lower loss, lower speed), so those trials
    are the Pareto front; any y > 0 is worse on both than the same x at y = 0. `speed` is
    only reported, never returned: its final value is the last report."""
    x, y = float(config.get("x", 0.0)), float(config.get("y", 0.0))
    for step in range(1, 4):
        report({"step": step, "loss": x + y + (3 - step) / 10, "speed": 10 * (x - y)})
    return {"loss": x + y}


def nan_loss(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, Any]:
    """Reports a NaN loss and returns nothing: a program that diverged without saying so."""
    report({"step": 1, "loss": float("nan")})
    return {}


def broken(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, Any]:
    """Fails the same way whatever its config: a bug in the program, not the configuration."""
    report({"step": 1, "accuracy": 0.5})
    raise RuntimeError("the data path is wrong")


def other_metric(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, Any]:
    """Reports `acc` and `step`, never the sweep's metric."""
    report({"step": 1, "acc": 0.5})
    return {"acc": 0.5}


def secretive(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, Any]:
    """Prints every parameter (secrets too) and WANDB_API_KEY, reports and returns them: none of
    it may reach the sweep's files. `resolved` says whether `db_url` arrived resolved."""
    for key, value in sorted(config.items()):
        print(f"{key} = {value}")
    print(f"WANDB_API_KEY = {os.environ.get('WANDB_API_KEY')}", file=sys.stderr)
    report({"step": 1, "loss": float(config.get("x", 1.0)), "echo": config["hf_token"]})
    resolved = config.get("db_url") == os.environ.get("ORCHESTRATE_TEST_DB_URL")
    return {
        "loss": float(config.get("x", 1.0)),
        "resolved": float(resolved),
        "echo": config["api_key"],
    }


def noisy(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, float]:
    """Prints `megabytes` MiB at once and returns, noting when in `checkpoint_dir/returned_at`:
    what it prints must cost neither time nor disk."""
    block = ("noise " * 170 + "\n") * 1024  # about 1 MiB
    for _ in range(int(config.get("megabytes", 200))):
        sys.stdout.write(block)
    print("the end")
    report({"step": 1, "loss": 0.0})
    Path(checkpoint_dir, "returned_at").write_text(str(time.time()))
    return {"loss": 0.0}


def gpu_steps(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, Any]:
    """`steps` as the trainer runs on a GPU, for machines without one: each report carries
    the figures `trainer.gpu.GpuMeter` reads from torch.cuda, faked (the boundary): a peak of
    `peak_mb` on a `total_mb` device. With `oom_x` equal to its `x`, it raises torch's
    OutOfMemoryError, as a CUDA allocation would, when it shares its device (a share below
    1). Each start appends its share, devices and times to `checkpoint_dir/gpu_starts.jsonl`.
    """
    import ray
    import torch

    share = ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0)
    line = {"share": share, "devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    line["began"] = time.time()
    figures = {
        "gpu_peak_memory_mb": float(config.get("peak_mb", 1000.0)),
        "gpu_total_memory_mb": float(config.get("total_mb", 81920.0)),
        "gpu_util": 50.0,
    }
    try:
        if config.get("oom_x") == config.get("x") and share < 1:
            time.sleep(0.2)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        result = steps(config, lambda metrics: report({**metrics, **figures}), checkpoint_dir)
    finally:
        line["ended"] = time.time()
        with open(Path(checkpoint_dir) / "gpu_starts.jsonl", "a") as handle:
            handle.write(json.dumps(line) + "\n")
    final = {"gpu_name": "fake", "gpu_util_mean": 50.0, "tokens_per_s": 1000.0, "mfu": 0.25}
    return {**result, "gpu_peak_memory_mb": figures["gpu_peak_memory_mb"], **final}
