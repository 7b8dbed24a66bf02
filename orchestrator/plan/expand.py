"""SweepSpec -> trials: fixed plans (grid, random, ablation, times seeds) and Optuna's parts.

`expand(spec)` lists every trial of a grid, random or ablation sweep up front, in an order that
depends only on the spec, so a resumed sweep can match trials by `index`. Bayes sweeps have no
plan: the controller asks Optuna trial by trial (`make_sampler`, `make_pruner`, `suggest`).

Order: configurations in the order of the spec's parameters (the first parameter varies
slowest), each repeated for every seed; `run_cap` keeps the first `run_cap` trials (W&B's
meaning: at most that many runs). A random sweep draws ceil(run_cap / seeds) configurations.

Random search follows W&B's distributions exactly (see `sample`); quantised values are kept
within [min, max]. A grid over `q_uniform` takes every multiple of q within [min, max], both
ends included when they are multiples (W&B's grid is np.arange(min, max, q): it starts at min
and leaves max out).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.spec.model import SweepSpec
from orchestrator.spec.parameter import Parameter, tidy_multiple


@dataclass(frozen=True)
class PlannedTrial:
    """One run of a fixed plan. `index` is stable for a given spec (resume relies on it)."""

    index: int
    params: dict[str, Any]  # what this trial sets (dotted keys); {"ablation": name} for ablations
    seed: int
    ablation: str | None  # None unless method ablation; "baseline" for the baseline
    overrides: dict[str, Any]  # everything applied to the base config, see trainer_overrides


def expand(spec: SweepSpec) -> list[PlannedTrial]:
    """Every trial of a grid, random or ablation sweep, times seeds; [] for bayes."""
    if spec.method == "bayes":
        return []
    if spec.method == "grid":
        names = list(spec.parameters)
        combos = itertools.product(*(grid_values(spec.parameters[n]) for n in names))
        configs = [(dict(zip(names, combo, strict=True)), None) for combo in combos]
    elif spec.method == "random":
        rng = np.random.default_rng(spec.optuna.seed)
        count = math.ceil(spec.run_cap / len(spec.seeds))
        configs = [
            ({name: sample(p, rng) for name, p in spec.parameters.items()}, None)
            for _ in range(count)
        ]
    else:
        names = ["baseline", *spec.ablations]
        configs = [({"ablation": name}, name) for name in names]

    trials = []
    for params, ablation in configs:
        for seed in spec.seeds:
            shown = {**params, "seed": seed} if len(spec.seeds) > 1 else dict(params)
            overrides = trainer_overrides(spec, params, seed, ablation)
            trials.append(PlannedTrial(len(trials), shown, seed, ablation, overrides))
    return trials[: spec.run_cap] if spec.run_cap else trials


def trainer_overrides(
    spec: SweepSpec, params: dict[str, Any], seed: int, ablation: str | None = None
) -> dict[str, Any]:
    """The dotted overrides for one trial: spec.trainer, then (ablations) the baseline and the
    ablation, then the params; then the seed, as the program takes it
    (`Program.seed_overrides`: `train.seed` for the shared trainer)."""
    overrides = dict(spec.trainer)
    if spec.method == "ablation":
        overrides |= spec.baseline
        if ablation not in (None, "baseline"):
            overrides |= spec.ablations[ablation]
    overrides |= {k: v for k, v in params.items() if k not in ("seed", "ablation")}
    return overrides | spec.trial_program.seed_overrides(seed, len(spec.seeds))


def grid_values(p: Parameter) -> list[Any]:
    """The values a grid takes for a discrete parameter."""
    return p.grid_values()


def sample(p: Parameter, rng: np.random.Generator) -> Any:
    """One value drawn as W&B draws it (quantised values kept within their bounds)."""
    d = p.distribution
    if d == "constant":
        return p.value
    if d == "categorical":
        return p.values[int(rng.choice(len(p.values), p=p.probabilities))]
    if d == "int_uniform":
        return int(rng.integers(p.min, p.max + 1))
    if d in ("normal", "q_normal"):
        x = rng.normal(p.mu, p.sigma)
    elif d in ("log_normal", "q_log_normal"):
        x = rng.lognormal(p.mu, p.sigma)
    elif d in ("beta", "q_beta"):
        x = rng.beta(p.a, p.b)
    elif d in ("uniform", "q_uniform"):
        x = rng.uniform(p.min, p.max)
    elif d in ("log_uniform", "q_log_uniform"):
        x = math.exp(rng.uniform(p.min, p.max))
    elif d in ("log_uniform_values", "q_log_uniform_values"):
        x = math.exp(rng.uniform(math.log(p.min), math.log(p.max)))
    elif d == "inv_log_uniform":
        x = math.exp(-rng.uniform(p.min, p.max))
    elif d == "inv_log_uniform_values":
        x = math.exp(-rng.uniform(-math.log(p.max), -math.log(p.min)))
    else:
        raise ValueError(f"unknown distribution {d}")
    bounds = p.value_range()
    if d.startswith("q_"):
        x = tidy_multiple(round(x / p.q) * p.q, p.q)
    if bounds is not None:
        x = min(max(x, bounds[0]), bounds[1])  # only float rounding can step outside
    return x if isinstance(x, int) else float(x)


def plan_summary(spec: SweepSpec, trials: list[PlannedTrial]) -> dict[str, Any]:
    """What `orchestrate plan` shows: a one-line summary, the trials, and for bayes the space."""
    if spec.method == "bayes":
        count = f"up to {spec.run_cap} trials, asked one by one ({spec.optuna.sampler} sampler)"
    else:
        count = f"{len(trials)} trial{'s' * (len(trials) != 1)}"
        if spec.seed_range:
            low, high = spec.seed_range
            count += f" ({low} seeds each, adaptive: up to {high} for undecided ones)"
    metric = f"metric {spec.metric.label}" if spec.metric else "no metric"
    if spec.multi_objective:
        metric = "Pareto front of " + ", ".join(m.label for m in spec.objectives)
    pruner = "" if spec.optuna.pruner == "none" else f", {spec.optuna.pruner} pruner"
    r = spec.resources
    program = spec.trial_program.label
    line = (
        f"{spec.name}: {spec.method}, {count}; {metric}{pruner}; "
        f"{r.cpus:g} cpu, {r.gpus if r.auto_gpus else format(r.gpus, 'g')} gpu per trial; "
        f"{program}"
    )
    return {
        "summary": line,
        "spec": spec.model_dump(mode="json", exclude={"param_paths"}),
        "trials": [dataclasses.asdict(trial) for trial in trials],
        "search_space": {name: p.describe() for name, p in spec.parameters.items()}
        if spec.method == "bayes"
        else None,
    }
