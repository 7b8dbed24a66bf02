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

Bayes maps each W&B distribution to an Optuna distribution (`param_distributions`):
- int_uniform, uniform: the same range; categorical: its values (probabilities are ignored);
- log_uniform: log-scale floats from exp(min) to exp(max); inv_log_uniform: exp(-max) to
  exp(-min); the *_values variants: log-scale floats from min to max;
- normal: uniform over mu +- 3 sigma (99.7% of the mass); log_normal: log-scale over
  exp(mu +- 3 sigma); beta: uniform over [0, 1];
- q_ variants: the same range stepped by q over the multiples of q it contains (ints when q is
  an int); Optuna cannot step on a log scale, so q_log_* with q = 1 become log-scale ints and
  with any other q lose their log prior;
- constants are not searched: `suggest` adds them to the params it returns.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from orchestrator.spec.model import PRUNERS, SAMPLERS, SweepSpec
from orchestrator.spec.parameter import Parameter, quantised_range

NORMAL_WIDTH = 3.0  # bayes searches a normal over mu +- NORMAL_WIDTH sigma


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
    if p.distribution == "constant":
        return [p.value]
    if p.distribution == "categorical":
        return list(p.values)
    if p.distribution == "int_uniform":
        return list(range(p.min, p.max + 1))
    if p.distribution == "q_uniform":
        lo, hi = p.value_range()
        count = round((hi - lo) / p.q) + 1
        return [_tidy(lo + i * p.q, p.q) for i in range(count)]
    raise ValueError(f"{p.distribution} has no grid")  # spec validation prevents this


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
        x = _tidy(round(x / p.q) * p.q, p.q)
    if bounds is not None:
        x = min(max(x, bounds[0]), bounds[1])  # only float rounding can step outside
    return x if isinstance(x, int) else float(x)


def _tidy(x: float, q: float) -> int | float:
    """A multiple of q without float noise (0.30000000000000004 -> 0.3); int for int q."""
    return int(round(x)) if isinstance(q, int) else round(x, 12)


def param_distributions(spec: SweepSpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """The Optuna search space of a bayes sweep (constants excluded); see the module doc."""
    space = {}
    for name, p in spec.parameters.items():
        if not p.is_constant:
            space[name] = _distribution(p)
    return space


def _distribution(p: Parameter) -> optuna.distributions.BaseDistribution:
    d = p.distribution
    dists = optuna.distributions
    if d == "categorical":
        return dists.CategoricalDistribution(p.values)
    if d == "int_uniform":
        return dists.IntDistribution(p.min, p.max)
    if d in ("normal", "q_normal"):
        lo, hi = p.mu - NORMAL_WIDTH * p.sigma, p.mu + NORMAL_WIDTH * p.sigma
        log = False
    elif d in ("log_normal", "q_log_normal"):
        lo, hi = math.exp(p.mu - NORMAL_WIDTH * p.sigma), math.exp(p.mu + NORMAL_WIDTH * p.sigma)
        log = True
    else:
        lo, hi = p.value_range()
        log = "log" in d
    if not d.startswith("q_"):
        return dists.FloatDistribution(lo, hi, log=log)
    lo, hi = quantised_range(lo, hi, p.q)
    if isinstance(p.q, int):
        if log and p.q == 1 and lo >= 1:
            return dists.IntDistribution(lo, hi, log=True)
        return dists.IntDistribution(lo, hi, step=p.q)
    return dists.FloatDistribution(lo, hi, step=p.q)


def suggest(trial: optuna.Trial, spec: SweepSpec) -> dict[str, Any]:
    """A bayes trial's params: each searched parameter via trial.suggest_*, plus constants."""
    space = param_distributions(spec)
    params = {}
    for name, p in spec.parameters.items():
        dist = space.get(name)
        if dist is None:
            params[name] = p.value
        elif isinstance(dist, optuna.distributions.CategoricalDistribution):
            params[name] = trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, optuna.distributions.IntDistribution):
            params[name] = trial.suggest_int(
                name, dist.low, dist.high, step=dist.step, log=dist.log
            )
        else:
            params[name] = trial.suggest_float(
                name, dist.low, dist.high, step=dist.step, log=dist.log
            )
    return params


def make_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    """The spec's Optuna sampler (TPE unless `optuna.sampler` says otherwise), seeded."""
    sampler = getattr(optuna.samplers, SAMPLERS[spec.optuna.sampler])
    return sampler(**{"seed": spec.optuna.seed, **spec.optuna.sampler_options})


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """The spec's pruner. Hyperband takes W&B's `early_terminate`: min_iter -> min_resource,
    max_iter -> max_resource (and min_resource = max_iter / eta**s), eta -> reduction_factor.
    W&B counts an iteration per reported value of the metric; the controller reports
    intermediate values at the program's own step (so a resumed trial's repeated reports land
    on the same steps), so for the shared trainer an iteration is `train.eval_every` steps."""
    options = dict(spec.optuna.pruner_options)
    name = spec.optuna.pruner
    et = spec.early_terminate
    if name == "hyperband" and et is not None:
        steps = spec.trial_program.iteration_steps()
        options.setdefault("reduction_factor", et.eta)
        if et.max_iter is not None:
            options.setdefault("max_resource", et.max_iter * steps)
        if et.min_iter is not None:
            options.setdefault("min_resource", et.min_iter * steps)
        else:
            options.setdefault("min_resource", max(1, round(et.max_iter / et.eta**et.s)) * steps)
    return getattr(optuna.pruners, PRUNERS[name])(**options)


def plan_summary(spec: SweepSpec, trials: list[PlannedTrial]) -> dict[str, Any]:
    """What `orchestrate plan` shows: a one-line summary, the trials, and for bayes the space."""
    if spec.method == "bayes":
        count = f"up to {spec.run_cap} trials, asked one by one ({spec.optuna.sampler} sampler)"
    else:
        count = f"{len(trials)} trial{'s' * (len(trials) != 1)}"
    metric = f"{spec.metric.name} ({spec.metric.goal})" if spec.metric else "no metric"
    pruner = "" if spec.optuna.pruner == "none" else f", {spec.optuna.pruner} pruner"
    r = spec.resources
    program = spec.trial_program.label
    line = (
        f"{spec.name}: {spec.method}, {count}; metric {metric}{pruner}; "
        f"{r.cpus:g} cpu, {r.gpus:g} gpu per trial; {program}"
    )
    return {
        "summary": line,
        "spec": spec.model_dump(mode="json", exclude={"param_paths"}),
        "trials": [dataclasses.asdict(trial) for trial in trials],
        "search_space": {name: p.describe() for name, p in spec.parameters.items()}
        if spec.method == "bayes"
        else None,
    }
