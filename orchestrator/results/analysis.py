"""What a sweep's trials say together: ablation deltas across seeds, and parameter importance.

Ablations. The trials of an ablation sweep group by the plan point they ran (the baseline or
one ablation; `expand(spec)[plan_index]`), one trial per seed. A group's metrics are the
mean and the sample standard deviation (ddof 1; 0 for a single seed) over its complete trials:
the sweep's metric (the store's value) and every numeric final metric the program returned.
A diverged trial has no final metrics, so it cannot enter a mean; it is a finding all the
same, so each group also carries `diverged`, the fraction of its seeds that diverged, which
is logged and shown like any other metric. Groups rank best to worst by how many of their
seeds did not complete (diverged, failed, pruned or still running), then by the mean. Each
ablation is compared with the baseline seed by seed (`compare`; the statistics, a CI, a
p-value and a verdict, are in `ablation_stats`).

Importance. Optuna's fANOVA (`get_param_importances`, its default evaluator, seeded so a
report is reproducible) over the complete trials, with each parameter given the scale the
spec sweeps it on. The seed is not a parameter here; constants and parameters that took one
value are left out. Fewer than 2 complete trials, or fewer than 2 varying parameters, skip it
with the reason said; fewer than `FEW_TRIALS` complete trials give importances with a warning
beside them (a forest fitted to a handful of points says little).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from orchestrator.format import format_params, format_value
from orchestrator.plan.rounds import SeedRound, config_key, full_plan, reference_key
from orchestrator.results.ablation_stats import (
    PairedComparison,
    ci_text,
    p_text,
    paired_comparison,
    power_text,
)
from orchestrator.results.sweep import Sweep
from orchestrator.spec.model import SweepSpec
from orchestrator.store.results import TrialResult

DIVERGED = "diverged"  # the pseudo-metric: fraction of a group's seeds that diverged
BOOKKEEPING = frozenset({"step", "tokens", "epoch", "resumed_from_step"})  # not results
NOT_PARAMETERS = frozenset({"seed", "ablation"})
FEW_TRIALS = 10  # importance from fewer complete trials is shown with a warning


# --- ablations -----------------------------------------------------------------------------


@dataclass
class AblationGroup:
    """The trials of one plan point (baseline or an ablation) across seeds."""

    name: str
    changes: dict[str, Any]  # what it sets on top of the baseline ({} for the baseline)
    seeds: list[int]  # the seeds the plan runs it with
    by_seed: dict[str, dict[int, float]] = field(default_factory=dict)  # metric -> seed -> value
    trials: list[int] = field(default_factory=list)  # trial numbers
    complete: int = 0
    diverged: int = 0
    failed: int = 0  # failed for another reason than divergence
    unfinished: int = 0  # pruned, running or interrupted

    @property
    def values(self) -> dict[str, list[float]]:
        """Each metric's values over the complete seeds, in the order they completed."""
        return {metric: list(by_seed.values()) for metric, by_seed in self.by_seed.items()}

    def stats(self, metric: str) -> tuple[float, float]:
        """(mean, std) of a metric over the complete seeds; NaN when none has it."""
        if metric == DIVERGED:
            return self.diverged / max(len(self.seeds), 1), 0.0
        return mean_std(self.values.get(metric, []))

    def status(self) -> str:
        """`2/2 complete`, or e.g. `1/2 complete, 1 diverged`."""
        parts = [f"{self.complete}/{len(self.seeds)} complete"]
        for count, word in ((self.diverged, "diverged"), (self.failed, "failed")):
            if count:
                parts.append(f"{count} {word}")
        if self.unfinished:
            parts.append(f"{self.unfinished} unfinished")
        return ", ".join(parts)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value, NaN for none)."""
    if not values:
        return math.nan, math.nan
    if len(values) == 1:
        return float(values[0]), 0.0
    return statistics.fmean(values), statistics.stdev(values)


def compares_configs(spec: SweepSpec) -> bool:
    """Whether the sweep's configurations are compared seed by seed: an ablation sweep, and a
    grid that runs every point with 2 or more seeds."""
    seeded = len(spec.seeds) > 1 or spec.seed_range is not None
    return spec.method == "ablation" or (spec.method == "grid" and seeded)


def config_groups(
    spec: SweepSpec,
    records: list[TrialResult],
    metric: str,
    goal: str,
    rounds: list[SeedRound] = (),
) -> list[AblationGroup]:
    """The configurations a sweep compares seed by seed (`compares_configs`), the reference
    first: an ablation sweep's baseline, then each ablation in the spec's order; a grid's
    points, the one its `baseline:` names (else the best by mean) first. `metric`, the
    sweep's, is the store's value of each trial; `rounds`, the seeds adaptive seeds added."""
    plan = full_plan(spec, list(rounds))
    groups: dict[str, AblationGroup] = {}
    if spec.method == "ablation":
        for name in ["baseline", *spec.ablations]:
            groups[name] = AblationGroup(name, dict(spec.ablations.get(name, {})), [])
    for planned in plan:
        key = config_key(planned)
        if key not in groups:
            point = {k: v for k, v in planned.params.items() if k != "seed"}
            groups[key] = AblationGroup(point_name(point), point, [])
        groups[key].seeds.append(planned.seed)
    for record in records:
        if record.plan_index is not None and record.plan_index < len(plan):
            planned = plan[record.plan_index]
            _add_result(groups[config_key(planned)], record, planned.seed, metric)
    reference = reference_key(spec)
    if reference is None:  # a grid without a named point: the best one
        reference = config_key(plan[0]) if plan else None
        best = ranked(list(groups.values()), metric, goal)
        if best and best[0].complete:
            reference = next(k for k, g in groups.items() if g is best[0])
    first = groups.pop(reference) if reference in groups else None
    return ([first] if first else []) + list(groups.values())


def point_name(point: dict[str, Any]) -> str:
    """A grid point's name: `lr=0.001,num_heads=4`."""
    return format_params(point).replace(" ", ",")


def _add_result(group: AblationGroup, record: TrialResult, seed: int, metric: str) -> None:
    group.trials.append(record.trial)
    if record.state == "complete":
        group.complete += 1
        metrics = {**numeric(record.final_metrics), metric: record.value}
        for key, value in metrics.items():
            group.by_seed.setdefault(key, {})[seed] = float(value)
    elif record.state == "fail" and record.reason == "diverged":
        group.diverged += 1
    elif record.state == "fail":
        group.failed += 1
    else:
        group.unfinished += 1


def compared(
    spec: SweepSpec, sweep: Sweep
) -> tuple[list[AblationGroup], dict[str, dict[str, PairedComparison]]]:
    """The configurations a sweep compares seed by seed (`config_groups`, the reference
    first) and each one's comparison with the reference (`compare`); nothing for a sweep
    that compares none (`compares_configs`)."""
    if not compares_configs(spec):
        return [], {}
    metric, goal = sweep.info.metric_name, sweep.info.goal
    groups = config_groups(spec, sweep.trials, metric, goal, sweep.rounds)
    return groups, compare(groups, metric, goal)


def trial_comparisons(
    groups: list[AblationGroup], comparisons: dict[str, dict[str, PairedComparison]], metric: str
) -> dict[int, dict[str, Any]]:
    """Trial number -> its configuration's comparison with the reference on the sweep's
    metric (`results.json`'s `comparison`): the same for every seed of a configuration; the
    reference's trials say only that they are the reference."""
    found = {}
    for index, group in enumerate(groups):
        entry: dict[str, Any] = {"config": group.name, "against": groups[0].name}
        if index == 0:
            entry["reference"] = True
        else:
            entry |= comparisons[group.name][metric].columns()
        found |= dict.fromkeys(group.trials, entry)
    return found


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric final metrics that are results (not step counters)."""
    return {
        k: v
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in BOOKKEEPING
    }


def ablation_metrics(metric: str, groups: list[AblationGroup]) -> list[str]:
    """The metrics every ablation is compared on: the sweep's metric, the other final metrics
    any group has, and `diverged`."""
    others = sorted({k for g in groups for k in g.values} - {metric})
    return [metric, *others, DIVERGED]


def compare(
    groups: list[AblationGroup], metric: str, goal: str
) -> dict[str, dict[str, PairedComparison]]:
    """Each ablation (not the baseline, `groups[0]`) against the baseline, seed by seed, on
    every metric but `diverged`: ablation -> metric -> comparison. Only the sweep's `metric`
    has a goal (so a verdict of better or worse); the others say higher or lower."""
    baseline = groups[0]
    metrics = [m for m in ablation_metrics(metric, groups) if m != DIVERGED]
    return {
        group.name: {
            m: paired_comparison(
                group.seeds,
                baseline.by_seed.get(m, {}),
                group.by_seed.get(m, {}),
                goal if m == metric else None,
            )
            for m in metrics
        }
        for group in groups[1:]
    }


def ranked(groups: list[AblationGroup], metric: str, goal: str) -> list[AblationGroup]:
    """Best to worst: fewest seeds that did not complete first, then by the metric's mean."""
    sign = 1 if goal == "minimize" else -1

    def key(group: AblationGroup) -> tuple:
        mean = group.stats(metric)[0]
        missing = 1 - group.complete / max(len(group.seeds), 1)
        return (group.complete == 0, missing, math.inf if math.isnan(mean) else sign * mean)

    return sorted(groups, key=key)


def ablation_table(found: Findings) -> Table:
    """The terminal table, best to worst: one line per group, the sweep's metric, and each
    ablation's (a grid's point's) paired delta against the baseline (the grid's reference)
    with its CI, p-value, effect and verdict (`found.comparisons`, from `compare`: the same
    numbers the summary run logs)."""
    groups, comparisons = found.groups, found.comparisons
    metric, goal = found.sweep.info.metric_name, found.sweep.info.goal
    title = f"{found.kind}s: {metric} ({goal}), mean ± std over seeds; Δ paired by seed"
    if found.kind != "ablation":
        title += f" against {found.against}"
    table = Table(title=f"{title}, 95% CI")
    changes = ["changes"] if found.kind == "ablation" else []  # a point's name says its changes
    columns = ["#", found.kind, *changes, "seeds", metric, "Δ", "95% CI", "p", "effect"]
    for column in [*columns, "verdict"]:
        left = column in (found.kind, "changes", "verdict")
        table.add_column(column, justify="left" if left else "right", overflow="fold")
    for rank, group in enumerate(ranked(groups, metric, goal), start=1):
        status = group.status()
        style = "red" if group.diverged or group.failed else ""
        cells = [str(rank), group.name, *[format_params(group.changes) or "-"] * len(changes)]
        cells += [f"[{style}]{status}[/]" if style else status, plus_minus(*group.stats(metric))]
        table.add_row(*cells, *comparison_cells(comparisons.get(group.name, {}).get(metric)))
    return table


def comparison_cells(comparison: PairedComparison | None) -> list[str]:
    """Δ, 95% CI, p, effect (in baseline seed-sds) and verdict as text; `-` for the baseline."""
    if comparison is None:
        return ["-"] * 5
    c = comparison
    delta = "-" if c.mean_diff is None else f"{c.mean_diff:+.4g}"
    effect = "-" if c.effect_sd is None else f"{c.effect_sd:+.2g} sd"
    verdict = c.verdict + (f" ({c.excluded} seed(s) without a pair)" if c.excluded else "")
    if power_text(c) != "-":
        verdict += f"; {power_text(c)} for 80% power"
    return [delta, ci_text(c.ci_low, c.ci_high), p_text(c.p_value), effect, verdict]


def plus_minus(mean: float | None, std: float | None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{format_value(float(mean))} ± {format_value(float(std or 0.0))}"


def percent(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{100 * value:+.1f}%"


# --- parameters and their scales -----------------------------------------------------------


def swept_params(records: list[TrialResult]) -> list[str]:
    """Parameters that took more than one value across the trials (seed and ablation aside)."""
    seen: dict[str, set[str]] = {}
    for record in records:
        for key, value in record.params.items():
            seen.setdefault(key, set()).add(repr(value))
    return [k for k, v in seen.items() if len(v) > 1 and k not in NOT_PARAMETERS]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_log_scaled(spec: SweepSpec, name: str, values: list[Any]) -> bool:
    """Whether a parameter is swept on a log scale: its distribution says so (log_uniform,
    q_log_uniform_values, ...), or its values are positive numbers spanning two decades
    (a grid of learning rates)."""
    if not values or not all(is_number(v) for v in values) or min(values) <= 0:
        return False
    parameter = spec.parameters.get(name)
    if parameter is not None and "log" in (parameter.distribution or ""):
        return True
    return max(values) / min(values) >= 100


# --- importance ----------------------------------------------------------------------------


@dataclass
class Importance:
    """Each parameter's share of the metric's variance, most important first."""

    values: dict[str, float]
    trials: int  # complete trials it is computed from
    skipped: str | None = None  # why there are no values
    evaluator: str = "fANOVA"

    @property
    def warning(self) -> str | None:
        """What to say beside importances computed from fewer than `FEW_TRIALS` trials."""
        if not self.values or self.trials >= FEW_TRIALS:
            return None
        return (
            f"only {self.trials} complete trials: with fewer than {FEW_TRIALS} these "
            "importances are mostly noise"
        )


def param_importance(spec: SweepSpec, records: list[TrialResult]) -> Importance:
    """fANOVA importance of the swept parameters over the complete trials (module docstring)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    complete = [
        r
        for r in records
        if r.state == "complete" and r.value is not None and math.isfinite(r.value)
    ]
    names = swept_params(complete)
    complete = [r for r in complete if all(name in r.params for name in names)]
    if len(complete) < 2:
        return Importance({}, len(complete), f"{len(complete)} complete trial(s); needs 2")
    if len(names) < 2:
        only = f" ({names[0]})" if names else ""
        return Importance({}, len(complete), f"{len(names)} varying parameter{only}; needs 2")
    distributions = {}
    for name in names:
        values = [r.params[name] for r in complete if name in r.params]
        if all(is_number(v) for v in values):
            log = is_log_scaled(spec, name, values)
            distributions[name] = FloatDistribution(min(values), max(values), log=log)
        else:
            distributions[name] = CategoricalDistribution(list(dict.fromkeys(values)))
    study = optuna.create_study(direction=spec.metric.goal if spec.metric else "minimize")
    for record in complete:
        params = {
            k: float(v) if isinstance(distributions[k], FloatDistribution) else v
            for k, v in record.params.items()
            if k in distributions
        }
        trial = optuna.trial.create_trial(
            params=params, distributions=distributions, value=record.value
        )
        study.add_trial(trial)
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except ImportError:
        return Importance({}, len(complete), "fANOVA needs scikit-learn (pip install scikit-learn)")
    return Importance({k: float(v) for k, v in found.items()}, len(complete))


def importance_table(importance: Importance) -> Table:
    """The terminal table of parameter importances, most important first; as wide as its
    title, so that the title and the warning under it keep to a line or two."""
    title = f"parameter importance ({importance.evaluator}, {importance.trials} complete trials)"
    table = Table(
        title=title,
        caption=f"warning: {importance.warning}" if importance.warning else None,
        min_width=len(title),
    )
    table.add_column("parameter")
    table.add_column("importance", justify="right")
    for name, value in importance.values.items():
        table.add_row(name, f"{value:.3f}")
    return table


# --- what the report shows -----------------------------------------------------------------


@dataclass
class Findings:
    """A sweep and what its trials say together: what the report logs, draws and writes."""

    spec: SweepSpec
    sweep: Sweep
    groups: list[AblationGroup] = field(default_factory=list)  # `compared`: reference first
    comparisons: dict[str, dict[str, PairedComparison]] = field(default_factory=dict)  # compare
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # their logged deltas
    importance: Importance | None = None  # another sweep's
    costs: Any = None  # an ablation sweep's `costs.CostComparison`

    @property
    def kind(self) -> str:
        """What a compared configuration is called: an ablation, or a grid's point."""
        return "ablation" if self.spec.method == "ablation" else "point"

    @property
    def against(self) -> str:
        """What the others are compared with, in words."""
        if self.spec.method == "ablation" or not self.groups:
            return "the baseline"
        how = "named in baseline:" if self.spec.baseline else "the best by mean"
        return f"{self.groups[0].name} ({how})"
