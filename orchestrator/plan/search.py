"""Bayes sweeps: the spec's parameters as Optuna distributions, its sampler and pruner.

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

import math
from typing import Any

import optuna

from orchestrator.spec.model import SweepSpec
from orchestrator.spec.parameter import Parameter, quantised_range
from orchestrator.spec.search_options import PRUNERS, SAMPLERS

NORMAL_WIDTH = 3.0  # bayes searches a normal over mu +- NORMAL_WIDTH sigma


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
