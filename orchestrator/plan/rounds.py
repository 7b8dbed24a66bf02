"""Adaptive seeds' plan: the base plan plus the rounds of seeds added while the sweep ran;
and the order the plan's trials are dispatched in.

`seeds: {min: 2, max: 8}` plans `min` seeds of every configuration (`expand`). Each round
the controller adds (`run.adaptive`) is one more seed for some configurations: the baseline
and the ablations still undecided (a grid: every point still undecided against the best).
The rounds live in the store, a study attribute (`SEED_ROUNDS`) written before their trials
are enqueued, so the plan is always `full_plan(spec, rounds)`: the base plan's trials keep
their indexes and each round's trials follow them, in the order they were added. A controller
that dies between recording a round and enqueuing it leaves the round recorded; the next one
rebuilds the same plan and enqueues what is missing.

Optuna refuses a categorical whose choices change within a study, so the distributions are
computed from `largest_plan` (every configuration with every seed up to max) from the start.

Dispatch order (`dispatch_order`): seed-major, so the baseline and the ablations run seed 0,
then all run seed 1, ...: no arm runs all its trials first (cold workers, a busier cluster).
Indexes stay config-major, so an existing sweep's points keep theirs on resume.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.plan.expand import PlannedTrial, expand, trainer_overrides
from orchestrator.spec.model import SweepSpec
from orchestrator.store.attrs import SEED_ROUNDS


@dataclass(frozen=True)
class SeedRound:
    """One added seed and the configurations (`config_key`) that run it."""

    seed: int
    configs: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def config_key(planned: PlannedTrial) -> str:
    """A configuration's name: the ablation's, else its params without the seed as JSON."""
    if planned.ablation is not None:
        return planned.ablation
    return json.dumps({k: v for k, v in planned.params.items() if k != "seed"}, sort_keys=True)


def reference_key(spec: SweepSpec) -> str | None:
    """The configuration the others are compared with: an ablation sweep's baseline, the
    grid point a grid's `baseline:` names; None for a grid without one (its best point)."""
    if spec.method == "ablation":
        return "baseline"
    return json.dumps(spec.baseline, sort_keys=True) if spec.baseline else None


def read_rounds(study_attrs: dict[str, Any]) -> list[SeedRound]:
    """The rounds recorded in a study's user attributes (`study.user_attrs`)."""
    return [SeedRound(int(r["seed"]), list(r["configs"])) for r in study_attrs.get(SEED_ROUNDS, [])]


def full_plan(
    spec: SweepSpec, rounds: list[SeedRound], base: list[PlannedTrial] | None = None
) -> list[PlannedTrial]:
    """The base plan (`expand(spec)`, or `base`), then each round's trials after it."""
    plan = list(expand(spec) if base is None else base)
    first = {}
    for planned in plan:
        first.setdefault(config_key(planned), planned)
    for seed_round in rounds:
        for key in seed_round.configs:
            template = first[key]
            params = {k: v for k, v in template.params.items() if k != "seed"}
            overrides = trainer_overrides(spec, params, seed_round.seed, template.ablation)
            shown = {**params, "seed": seed_round.seed}
            plan.append(
                PlannedTrial(len(plan), shown, seed_round.seed, template.ablation, overrides)
            )
    return plan


def largest_plan(spec: SweepSpec) -> list[PlannedTrial]:
    """The plan with every seed up to max (the plan itself without adaptive seeds): what
    the Optuna distributions are computed from, so they never change as rounds are added."""
    if spec.seed_range is None:
        return expand(spec)
    return expand(spec.model_copy(update={"seeds": list(range(spec.seed_range[1]))}))


def seeds_run(spec: SweepSpec, rounds: list[SeedRound]) -> list[int]:
    """The seeds planned so far: the base plan's and each round's."""
    return [*spec.seeds, *(r.seed for r in rounds)]


def next_seed(spec: SweepSpec, rounds: list[SeedRound]) -> int | None:
    """The seed the next round adds, or None once max seeds are planned."""
    if spec.seed_range is None:
        return None
    used = seeds_run(spec, rounds)
    if len(used) >= spec.seed_range[1]:
        return None
    return max(used) + 1


def dispatch_order(plan: list[PlannedTrial]) -> list[int]:
    """The plan's indexes seed-major: every configuration's first seed, then the second..."""
    position = {}
    for planned in plan:
        position.setdefault(planned.seed, len(position))
    return [p.index for p in sorted(plan, key=lambda p: (position[p.seed], p.index))]
