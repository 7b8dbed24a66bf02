"""Workers warmed while the controller sets up: the first trial of each slot no longer pays
for importing the worker's code, wandb and the program's libraries.

Ray starts its worker processes with Ray alone imported; a trial's first task on each then
imports orchestrate's worker path, wandb (when the sweep logs) and, for the shared trainer,
torch: 1 to 5 s per slot, spent while the slot's first trial waits. One short task per slot,
sent as soon as Ray is up, does those imports while the controller opens the store and
queues the plan; Ray keeps the processes for the trials that follow.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import ray

from orchestrator.spec.model import SweepSpec

SETTLE_SECONDS = 30.0
WORKER_MODULES = ("orchestrator.run.worker",)  # which imports every program's runner


def warm_workers(spec: SweepSpec, slots: int, trials: int | None) -> list[Any]:
    """Send one import task per slot that a trial will use (not waited for: a trial simply
    queues behind it)."""
    slots = min(slots, trials) if trials else slots
    modules = list(WORKER_MODULES)
    if spec.wandb.mode != "disabled":
        modules.append("wandb")
    modules += spec.trial_program.warm_modules
    task = _import_task.options(num_cpus=spec.resources.cpus)
    return [task.remote(modules) for _ in range(max(0, slots))]


def settle(tasks: list[Any], timeout: float = SETTLE_SECONDS) -> None:
    """Wait for the import tasks before Ray shuts down (a sweep that ends at once: bad input
    found after Ray started), so no worker is killed half-way through one."""
    if tasks:
        ray.wait(tasks, num_returns=len(tasks), timeout=timeout)


def import_modules(modules: list[str]) -> None:
    for name in modules:
        with contextlib.suppress(Exception):  # a trial will say what is wrong, and where
            importlib.import_module(name)


@ray.remote(max_retries=0)
def _import_task(modules: list[str]) -> None:
    import_modules(modules)
