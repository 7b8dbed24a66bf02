"""Compute accounting and warm workers: what each trial cost, and when costs compare fairly.

A trial's compute is its wall seconds (its last start to its end: `elapsed_s`) times what it
asked Ray for: GPU-seconds when it asked for GPUs, else CPU-seconds. Asked for, not measured:
a trial holds what it asked for whether it uses it or not, and the same figure exists for a
script, a function and the trainer on any node. (Measured process CPU time would miss
subprocesses and count the worker's own threads.) The controller records the worker process
and the resources at each start (`worker_record`, the `WORKER` attribute).

A worker is warm for a trial when an earlier trial of the sweep started in the same worker
process (same node, same pid): its imports are done, its caches filled. The first trial of
each worker pays that, so comparing its seconds with a warm trial's is comparing order, not
configurations (`warm_trials`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def worker_record(event: dict[str, Any], resources: Any) -> dict[str, Any]:
    """What the controller stores at a trial's start: its worker process and what it asked."""
    return {
        "node_id": event.get("node_id"),
        "pid": event.get("pid"),
        "cpus": float(resources.cpus),
        "gpus": float(event.get("gpus") or resources.gpus_needed),  # gpus: auto: its share
        "gpu_ids": event.get("gpu_ids"),  # the devices Ray gave it, on its node
    }


def worker_name(worker: dict[str, Any] | None) -> str | None:
    """`<node id>:<pid>`: the worker process a trial last started in."""
    return f"{worker.get('node_id')}:{worker.get('pid')}" if worker else None


def trial_compute(worker: dict[str, Any] | None, elapsed_s: float | None) -> tuple[float, str]:
    """(seconds, unit): `gpu-s` when the trial asked for GPUs, else `cpu-s` (module docstring);
    (0, "cpu-s") when it never started or has not ended."""
    if not worker or elapsed_s is None:
        return 0.0, "cpu-s"
    if worker.get("gpus"):
        return round(elapsed_s * worker["gpus"], 3), "gpu-s"
    return round(elapsed_s * (worker.get("cpus") or 0.0), 3), "cpu-s"


@dataclass
class ComputeTotals:
    """A set of trials' compute: in all, and the share spent on pruned trials."""

    seconds: float
    unit: str  # cpu-s or gpu-s (gpu-s when any trial asked for GPUs)
    pruned_seconds: float
    trials: int

    @property
    def pruned_share(self) -> float:
        return self.pruned_seconds / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """`compute: 1,234 cpu-s over 12 trials (wall s x cpus asked), 8% on pruned trials`."""
        basis = "gpus" if self.unit == "gpu-s" else "cpus"
        return (
            f"compute: {self.seconds:,.0f} {self.unit} over {self.trials} trials "
            f"(wall s x {basis} asked), {100 * self.pruned_share:.0f}% on pruned trials"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "unit": self.unit,
            "pruned_seconds": round(self.pruned_seconds, 3),
            "pruned_share": round(self.pruned_share, 4),
            "trials": self.trials,
        }


def totals(trials: Iterable[Any]) -> ComputeTotals:
    """The compute of `trials` (`TrialResult`s) in all and on pruned ones."""
    trials = list(trials)
    units = {t.compute_unit for t in trials if t.compute_s}
    unit = "gpu-s" if "gpu-s" in units else "cpu-s"
    seconds = sum(t.compute_s or 0.0 for t in trials)
    pruned = sum(t.compute_s or 0.0 for t in trials if t.state == "pruned")
    return ComputeTotals(seconds, unit, pruned, len(trials))


def warm_trials(trials: Iterable[Any]) -> set[int]:
    """The numbers of the trials that started on a warm worker (module docstring)."""
    seen: set[str] = set()
    warm: set[int] = set()
    started = [t for t in trials if t.worker and t.started_at is not None]
    for trial in sorted(started, key=lambda t: t.started_at):
        key = trial.worker
        if key in seen:
            warm.add(trial.trial)
        seen.add(key)
    return warm
