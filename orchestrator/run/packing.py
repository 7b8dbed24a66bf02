"""`resources: {gpus: auto}`: how many trials share one GPU, decided from measured memory.

The first trials run with a device to themselves (`num_gpus=1`) until one reports its peak
GPU memory (`gpu_peak_memory_mb` and the device's `gpu_total_memory_mb`, as the trainer
reports them from torch's allocator). Then each new trial asks Ray for `1/k` of a GPU, `k`
being as many trials as fit in 90% of the device's memory (each counted with a CUDA context
on top of what its allocator held), at most `max_per_gpu`. Ray hands out a fraction below 1
from one device (its GPU is a per-device resource), so `k` trials share each device, counted
per device, not against the total. A packed trial that runs out of memory is run again with
a device to itself, and `k` is lowered for the trials after it.

What this does not do: hold a trial to its share. Ray's fraction is bookkeeping (no memory
limit, no compute share), so a trial that grows past what the first one measured can run its
neighbours out of memory; they are retried alone. The arithmetic here is pure (no Ray):
`GpuPacker` is the controller's state, the functions below are what it computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MEMORY_FRACTION = 0.9  # of a device's memory that packed trials may fill together
CONTEXT_MB = 512.0  # per process, beyond its allocator: the CUDA context, cuBLAS workspaces
DEFAULT_MAX_PER_GPU = 8
OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError", "CUDA error: out of memory")


def trials_per_device(
    peak_mb: float,
    total_mb: float,
    cap: int = DEFAULT_MAX_PER_GPU,
    fraction: float = MEMORY_FRACTION,
    context_mb: float = CONTEXT_MB,
) -> int:
    """How many trials of `peak_mb` each fit in `fraction` of a `total_mb` device: at least
    1 (a trial that fits nowhere still runs alone), at most `cap`."""
    if peak_mb < 0 or total_mb <= 0:
        return 1
    fits = math.floor(fraction * total_mb / (peak_mb + context_mb) + 1e-9)
    return max(1, min(cap, fits))


def share_of(per_device: int) -> float:
    """The `num_gpus` to ask Ray for so that `per_device` trials fit on one device. Ray counts
    resources in steps of 1e-4: 1/3 becomes 0.3333, so three fit where 0.33333... might not."""
    if per_device <= 1:
        return 1.0
    return math.floor(10_000 / per_device) / 10_000


def packed_on(share: float) -> int:
    """How many trials of this share fit on one device (the inverse of `share_of`)."""
    return max(1, math.floor(1 / share + 1e-6)) if share > 0 else 1


def lowered(per_device: int) -> int:
    """The packing after a packed trial ran out of memory: one fewer per device."""
    return max(1, per_device - 1)


def is_out_of_memory(error: BaseException | None, text: str = "") -> bool:
    """Whether a trial failed for want of GPU memory: torch's OutOfMemoryError (by name, so
    that this needs no torch), anywhere in its causes, or the message in its text."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if any(cls.__name__ == "OutOfMemoryError" for cls in type(error).__mro__):
            return True
        text += f"\n{error}"
        error = error.__cause__ or error.__context__ or getattr(error, "cause", None)
    return any(marker in text for marker in OOM_MARKERS)


def packer_for(resources: Any) -> GpuPacker | None:
    """The packer of a spec's `resources:` under `gpus: auto`, else None."""
    if not resources.auto_gpus:
        return None
    return GpuPacker(cap=resources.max_per_gpu or DEFAULT_MAX_PER_GPU)


@dataclass
class GpuPacker:
    """The controller's packing under `gpus: auto`: what it measured, what it decided."""

    cap: int = DEFAULT_MAX_PER_GPU
    per_device: int | None = None  # None until a trial has reported its peak memory
    peak_mb: float = 0.0  # the largest peak any trial reported
    total_mb: float | None = None  # the smallest device any trial reported from
    alone: set[int] = field(default_factory=set)  # trials that ran out of memory when packed
    measured_by: int | None = None  # the trial whose report set the first packing

    shares: dict[int, float] = field(default_factory=dict)  # what each trial last asked for

    def share(self, trial_number: int | None = None) -> float:
        """The GPU share of a trial dispatched now: a whole device until memory is measured,
        or for a trial that ran out of memory packed."""
        if self.per_device is None or trial_number in self.alone:
            return 1.0
        return share_of(self.per_device)

    def dispatch(self, trial_number: int) -> float:
        """The `num_gpus` a trial is submitted with now, remembered for its end."""
        self.shares[trial_number] = self.share(trial_number)
        return self.shares[trial_number]

    def learn(self, trial_number: int, reports: list[dict[str, Any]]) -> bool:
        """A trial's reports: True (and says so on the console) when the packing changed."""
        changed = False
        for metrics in reports:
            changed = self.on_report(trial_number, metrics) or changed
        if changed:
            print(self.describe(), flush=True)
        return changed

    def retries_alone(self, trial_number: int, error: BaseException) -> bool:
        """Whether a trial that failed with `error` is to run again with a device to itself:
        it ran out of GPU memory packed (`on_out_of_memory`)."""
        share = self.shares.get(trial_number, 1.0)
        if not is_out_of_memory(error) or not self.on_out_of_memory(trial_number, share):
            return False
        print(f"trial {trial_number} ran out of GPU memory packed: {self.describe()}", flush=True)
        return True

    def on_report(self, trial_number: int, metrics: dict[str, Any]) -> bool:
        """Learn from one report of a trial; True when the packing changed."""
        peak, total = metrics.get("gpu_peak_memory_mb"), metrics.get("gpu_total_memory_mb")
        if not isinstance(peak, int | float) or not isinstance(total, int | float) or total <= 0:
            return False
        self.peak_mb = max(self.peak_mb, float(peak))
        self.total_mb = float(total) if self.total_mb is None else min(self.total_mb, total)
        fits = trials_per_device(self.peak_mb, self.total_mb, self.cap)
        if self.per_device is None:
            self.measured_by = trial_number
        changed = fits != self.per_device
        self.per_device = fits
        return changed

    def on_out_of_memory(self, trial_number: int, share: float) -> bool:
        """A trial ran out of memory with `share` of a device: True when it is to run again
        alone (it was packed); the packing is lowered, and capped there from now on."""
        if share >= 1.0 or trial_number in self.alone:
            return False
        self.alone.add(trial_number)
        self.cap = lowered(min(self.cap, packed_on(share)))
        self.per_device = min(self.per_device or self.cap, self.cap)
        return True

    def describe(self) -> str:
        """One line for the console: what was measured and how trials are packed."""
        if self.per_device is None:
            return "gpus: auto: one trial per GPU until a trial reports its GPU memory"
        total = f" of {self.total_mb / 1024:.0f} GiB" if self.total_mb else ""
        return (
            f"gpus: auto: {self.per_device} trial{'s' * (self.per_device != 1)} per GPU "
            f"(peak {self.peak_mb:.0f} MiB{total}, at most {self.cap})"
        )


def on_event(packer: GpuPacker | None, view: Any, event: dict[str, Any]) -> bool:
    """A trial's event, as the GPU column of the live table (`view.gpu`) and, under
    `gpus: auto`, the packer see it: True when the packing changed."""
    if event["event"] == "started" and event.get("gpu_ids"):
        view.gpu = {"device": ",".join(event["gpu_ids"]), "share": event.get("gpus")}
    if event["event"] != "metrics":
        return False
    for metrics in event["reports"] if view.gpu else ():
        for key, name in (("gpu_peak_memory_mb", "memory_mb"), ("gpu_util", "util")):
            if isinstance(metrics.get(key), int | float):
                view.gpu[name] = metrics[key]
    return packer is not None and packer.learn(view.number, event["reports"])
