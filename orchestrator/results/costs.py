"""What each arm of an ablation cost, and whether those costs compare fairly.

Compute per arm: the `compute_s` of all its trials (wall seconds x the cpus or gpus asked,
`store.compute`), whatever their ending: what its verdict took.

Cost per trial (elapsed seconds, tokens/s, peak memory when the program reports
`memory_mb`) is compared only between trials that ran on a warm worker (an earlier trial
started in the same worker process: `store.compute.warm_trials`), and over the same number of
them per arm: each arm's first k complete warm trials in seed order, k the fewest any arm has.
Then the label is "cost: fair (...)"; when an arm has no complete warm trial it is
"cost: not comparable (why)" and no cost is compared: the first trial of a worker pays its
imports and caches, so its seconds say when it ran, not what it is.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.store.compute import warm_trials


@dataclass
class ArmCost:
    """One arm (the baseline or an ablation)."""

    compute_s: float  # all its trials
    compute_unit: str
    warm: int  # its complete trials on a warm worker
    elapsed_s: float | None = None  # mean over the compared trials (fair only)
    tokens_per_s: float | None = None
    memory_mb: float | None = None


@dataclass
class CostComparison:
    """Every arm's cost, and whether its per-trial costs compare fairly (module docstring)."""

    fair: bool
    why: str  # what was compared, or why not
    per_arm: int  # warm trials compared per arm (0 when not comparable)
    arms: dict[str, ArmCost] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"cost: fair ({self.why})" if self.fair else f"cost: not comparable ({self.why})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


def compare_costs(groups: list[Any], records: list[Any]) -> CostComparison:
    """The arms' costs (`groups`: `AblationGroup`s, `records`: the sweep's `TrialResult`s)."""
    by_number = {r.trial: r for r in records}
    warm = warm_trials(records)
    arms, compared = {}, {}
    for group in groups:
        trials = [by_number[n] for n in group.trials if n in by_number]
        units = {t.compute_unit for t in trials if t.compute_s}
        unit = "gpu-s" if "gpu-s" in units else "cpu-s"
        total = round(sum(t.compute_s or 0.0 for t in trials), 3)
        ready = [t for t in trials if t.state == "complete" and t.trial in warm]
        ready.sort(key=lambda t: (t.params.get("seed", 0), t.trial))
        arms[group.name] = ArmCost(total, unit, len(ready))
        compared[group.name] = ready
    cold = [name for name, ready in compared.items() if not ready]
    if cold:
        why = f"{cold[0]} has no complete trial on a warm worker"
        return CostComparison(False, why, 0, arms)
    k = min(len(ready) for ready in compared.values())
    for name, ready in compared.items():
        _fill(arms[name], ready[:k])
    why = f"first {k} complete trial(s) per arm on a warm worker"
    return CostComparison(True, why, k, arms)


def _fill(arm: ArmCost, trials: list[Any]) -> None:
    def mean(values: list[float | None]) -> float | None:
        found = [v for v in values if isinstance(v, int | float)]
        return round(statistics.fmean(found), 4) if found else None

    arm.elapsed_s = mean([t.elapsed_s for t in trials])
    arm.tokens_per_s = mean([_tokens_per_s(t.final_metrics) for t in trials])
    arm.memory_mb = mean([t.final_metrics.get("memory_mb") for t in trials])


def _tokens_per_s(final: dict[str, Any]) -> float | None:
    tokens, seconds = final.get("tokens"), final.get("elapsed_s")
    if isinstance(tokens, int | float) and isinstance(seconds, int | float) and seconds > 0:
        return tokens / seconds
    return None


def cost_lines(costs: CostComparison) -> list[str]:
    """The label, then per arm its compute and, when fair, its seconds (and tokens/s) per
    trial with the change against the first arm (the baseline, or a grid's reference)."""
    lines = [costs.label]
    baseline = next(iter(costs.arms), None)
    base = costs.arms.get(baseline)
    for name, arm in costs.arms.items():
        text = f"  {name}: {arm.compute_s:,.1f} {arm.compute_unit} in all"
        if costs.fair and arm.elapsed_s is not None:
            text += f"; {arm.elapsed_s:.3g} s/trial"
            if base and base.elapsed_s and name != baseline:
                text += f" ({100 * (arm.elapsed_s / base.elapsed_s - 1):+.0f}%)"
            if arm.tokens_per_s:
                text += f", {arm.tokens_per_s:,.0f} tokens/s"
            if arm.memory_mb:
                text += f", {arm.memory_mb:,.0f} MB"
        lines.append(text)
    return lines
