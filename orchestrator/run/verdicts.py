"""The pruner's verdict, sent back to the trial that waits for it.

A trial's reports stream to the controller while it trains on, so a verdict sent as a Ray
cancel arrives steps after the pruner decided (a trial recorded PRUNED at step 40 trained to
step 60). With a pruner, a trial therefore waits at each report of the metric until the
controller has reported it to the study and posted the verdict here: it stops, with a
checkpoint, at exactly the step the pruner decided on. The wait is one actor round trip per
evaluation, and only when the sweep has a pruner.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import ray

WAIT_SECONDS = 300.0  # a controller this slow to answer: the trial goes on


@ray.remote(num_cpus=0)
class Verdicts:
    """Verdicts by key (trial number, attempt, report index): posted by the controller, taken
    once by the trial."""

    def __init__(self) -> None:
        self.posted: dict[tuple[int, int, int], str | None] = {}
        self.waiting: dict[tuple[int, int, int], asyncio.Event] = {}

    async def post(self, key: tuple[int, int, int], stop: str | None) -> None:
        self.posted[key] = stop
        if key in self.waiting:
            self.waiting.pop(key).set()

    async def take(self, key: tuple[int, int, int]) -> str | None:
        """Why the trial stops at this report (None: it goes on); waits until the controller
        says."""
        if key not in self.posted:
            event = self.waiting.setdefault(key, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), WAIT_SECONDS)
            except TimeoutError:
                self.waiting.pop(key, None)
                return None
        return self.posted.pop(key)


def start() -> Any:
    """The sweep's verdicts actor, on the controller's node; it ends with the controller."""
    node = ray.get_runtime_context().get_node_id()
    strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node, soft=True)
    return Verdicts.options(scheduling_strategy=strategy).remote()


@dataclass
class VerdictWait:
    """What a trial calls with each report (in its TrialRequest): why it stops there (pruned,
    or the controller's own stop: interrupted, a time limit), or None to go on. The
    n-th report of `metric` in one attempt waits for the verdict the controller posts under
    (trial, attempt, n). Plain data and the actor's handle: a program needs no Ray itself."""

    verdicts: Any  # the Verdicts actor
    trial_number: int
    attempt: int  # the trial's retries so far: a retried attempt counts its reports anew
    metric: str
    reports: int = 0  # reports of the metric so far in this attempt (counted on the worker)

    def __call__(self, metrics: dict[str, Any]) -> str | None:
        if metrics.get(self.metric) is None:
            return None  # the controller judges only reports of the metric
        key = (self.trial_number, self.attempt, self.reports)
        self.reports += 1
        try:
            return ray.get(self.verdicts.take.remote(key))
        except ray.exceptions.RayError:  # the controller is gone: the trial goes on
            return None
