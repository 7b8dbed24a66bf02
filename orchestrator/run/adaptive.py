"""Adaptive seeds: when every trial planned so far has ended, add one seed to the
configurations still undecided, until each is decided or max seeds are planned.

`seeds: {min, max}` (`spec.seed_range`) plans `min` seeds of everything. When a round has
ended, each ablation is compared with the baseline seed by seed (`paired_comparison`: the
paired t interval); one whose interval holds 0 (or that has fewer than 2 pairs but at least
one complete seed) is undecided. If any is and fewer than max seeds are planned, the next
round is the next seed for the baseline and the undecided ablations together (pairs need
both sides). A grid with adaptive seeds does the same with each point against the point its
`baseline:` names, else the best point (the best mean over its complete seeds).

A round is decided only when no trial of the sweep is still running anywhere (a killed
controller's trials are adopted and finished first: deciding without them would add a
round the finished sweep does not need). It is recorded in the store (`plan.rounds`, a
study attribute) before its trials are enqueued, so a controller killed in between rebuilds the same plan on resume and enqueues
what is missing. One line is printed per added round (who is undecided, the interval, the
seeds a t-test would need for 80% power), and one when it stops adding.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import optuna

from orchestrator import store
from orchestrator.plan import rounds
from orchestrator.plan.expand import PlannedTrial
from orchestrator.results.ablation_stats import (
    PairedComparison,
    ci_text,
    paired_comparison,
    power_text,
)
from orchestrator.spec.model import SweepSpec
from orchestrator.store import owners
from orchestrator.store.attrs import SEED_ROUNDS


@dataclasses.dataclass
class RoundDecision:
    """What the trials so far say: each configuration's comparison, and the next round."""

    reference: str  # the configuration the others are compared with
    comparisons: dict[str, PairedComparison]  # config -> against the reference
    undecided: list[str]
    seeds: int  # seeds planned so far (the most any configuration has)
    next_round: rounds.SeedRound | None  # None: every one is decided, or max seeds reached


def decide(
    spec: SweepSpec, plan: list[PlannedTrial], records: list[Any], goal: str, planned_rounds: list
) -> RoundDecision:
    """Compare every configuration with the reference over the seeds both ran (`records`:
    the sweep's `TrialResult`s) and say which round, if any, comes next."""
    values: dict[str, dict[int, float]] = {}
    seeds_of: dict[str, list[int]] = {}
    for planned in plan:
        seeds_of.setdefault(rounds.config_key(planned), []).append(planned.seed)
    for record in records:
        if record.plan_index is None or record.plan_index >= len(plan):
            continue
        planned = plan[record.plan_index]
        finite = record.value is not None and math.isfinite(record.value)
        if record.state == "complete" and finite:
            values.setdefault(rounds.config_key(planned), {})[planned.seed] = record.value
    reference = rounds.reference_key(spec) or _best(values, goal)
    comparisons = {
        key: paired_comparison(seeds, values.get(reference, {}), values.get(key, {}), goal)
        for key, seeds in seeds_of.items()
        if key != reference
    }
    undecided = [k for k, c in comparisons.items() if c.undecided and values.get(k)]
    seed = rounds.next_seed(spec, planned_rounds)
    upcoming = None
    if undecided and seed is not None and values.get(reference):
        upcoming = rounds.SeedRound(seed, [reference, *undecided])
    most = max((len(s) for s in seeds_of.values()), default=0)
    return RoundDecision(reference, comparisons, undecided, most, upcoming)


def _best(values: dict[str, dict[int, float]], goal: str) -> str:
    means = {k: sum(v.values()) / len(v) for k, v in values.items() if v}
    if not means:
        return ""
    pick = min if goal == "minimize" else max
    return pick(means, key=means.get)


def round_line(decision: RoundDecision, count: int) -> str:
    """One line for an added round, or for the end of adding."""
    why = "; ".join(
        f"{key} Δ {_delta(c)} {ci_text(c.ci_low, c.ci_high)} over {c.n_pairs} seeds"
        + (f", {power_text(c)} for 80% power" if power_text(c) != "-" else "")
        for key, c in decision.comparisons.items()
        if key in decision.undecided
    )
    if decision.next_round is not None:
        who = ", ".join(decision.next_round.configs)
        return f"adaptive seeds, round {count}: seed {decision.next_round.seed} for {who} (undecided: {why})"
    if decision.undecided:
        return f"adaptive seeds: max {decision.seeds} seeds reached; still undecided: {why}"
    return f"adaptive seeds: every comparison decided with {decision.seeds} seeds"


def _delta(c: PairedComparison) -> str:
    return "-" if c.mean_diff is None else f"{c.mean_diff:+.4g}"


def add_round(controller: Any) -> bool:
    """The controller's hook when every trial planned so far has ended: record and enqueue
    the next round if one is due (module docstring); whether one was. The controller's plan,
    trial factory, count of waiting trials and display grow with it."""
    spec: SweepSpec = controller.spec
    if spec.seed_range is None or getattr(controller, "adaptive_done", False):
        return False
    study: optuna.Study = controller.study
    if owners.others_run(study):  # a dead controller's trial, not yet adopted: wait for it
        return False
    planned_rounds = rounds.read_rounds(study.user_attrs)
    records = store.trial_results(study, controller.goal, pareto=False)
    decision = decide(spec, controller.plan, records, controller.goal, planned_rounds)
    print(round_line(decision, len(planned_rounds) + 1), flush=True)
    if decision.next_round is None:
        controller.adaptive_done = True
        return False
    planned_rounds.append(decision.next_round)
    study.set_user_attr(SEED_ROUNDS, [r.to_dict() for r in planned_rounds])  # before enqueuing
    plan = rounds.full_plan(spec, planned_rounds)
    store.enqueue_plan(study, [p.params for p in plan], rounds.dispatch_order(plan))
    controller.plan = plan
    controller.factory = dataclasses.replace(
        controller.factory, plan=plan, first_copies=store.first_copies(study)
    )
    controller.waiting.refill()
    controller.display.set_total(len(plan))
    _record_total(controller.run_dir, len(plan))
    return True


def distributions(spec: SweepSpec) -> dict[str, Any]:
    """The Optuna distributions of the sweep's plan points: of its largest plan (every seed
    up to max), so that a categorical `seed` keeps its choices as rounds are added."""
    return store.distributions_for_plan([p.params for p in rounds.largest_plan(spec)])


def resumed_plan(controller: Any) -> list[PlannedTrial]:
    """The controller's plan with the rounds its study records (a resumed adaptive sweep;
    `open_study` counted them in `sweep.json`'s total)."""
    planned_rounds = rounds.read_rounds(controller.study.user_attrs)
    return rounds.full_plan(controller.spec, planned_rounds, controller.plan)


def _record_total(run_dir: Any, total: int) -> None:
    info = store.read_sweep_file(run_dir)
    store.write_sweep_file(run_dir, dataclasses.replace(info, total=total))
