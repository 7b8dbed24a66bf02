"""The spec's search options: the metric (or several), W&B's `early_terminate`, and Optuna's
sampler and pruner, with the checks Optuna's constructors would otherwise make mid-sweep.

Several metrics (`metrics:`, as W&B's sweep scheduler takes them) make a multi-objective
study: Optuna keeps the Pareto front of the complete trials. Optuna cannot prune such trials
(`Trial.report` refuses them), and CMA-ES searches one objective only, so both are refused
here with the reason (`optuna_problems`, and the spec's early_terminate check).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from orchestrator.spec.parameter import Number, StrictModel, did_you_mean

# Optuna samplers by spec name, and the packages each needs beyond optuna.
SAMPLERS = {
    "tpe": "TPESampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
    "qmc": "QMCSampler",
    "random": "RandomSampler",
}
SAMPLER_PACKAGES = {"cmaes": ("cmaes",), "gp": ("scipy", "torch"), "qmc": ("scipy",)}
SINGLE_OBJECTIVE_SAMPLERS = ("cmaes",)  # Optuna's CmaEsSampler refuses multi-objective studies
PRUNERS = {
    "hyperband": "HyperbandPruner",
    "median": "MedianPruner",
    "sha": "SuccessiveHalvingPruner",
    "threshold": "ThresholdPruner",  # stops a trial whose metric leaves [lower, upper]
    "percentile": "PercentilePruner",
    "none": "NopPruner",
}
MULTI_OBJECTIVE_PRUNING = (
    "Optuna cannot prune a trial with several metrics (a multi-objective study); "
    "give one metric, or drop {what}"
)
MULTI_OBJECTIVE_SAMPLER = (
    "{sampler} searches one objective; with several metrics use tpe, gp, qmc or random"
)
BOTH_METRIC_KEYS = "give metric or metrics, not both (metric would be metrics[0])"


class Metric(StrictModel):
    name: str
    goal: Literal["minimize", "maximize"] = "minimize"
    target: Number | None = None
    impute: Literal["latest", "best", "worst"] | None = None  # W&B bayes only; accepted
    impute_while_running: Literal["latest", "best", "worst", "false"] | None = None

    @property
    def label(self) -> str:
        """`val_loss (minimize)`: how the plan, tables and plots name an objective."""
        return f"{self.name} ({self.goal})"


class EarlyTerminate(StrictModel):
    """W&B's hyperband: `min_iter`, or `max_iter` and `s`; iterations count metric reports."""

    type: Literal["hyperband"]
    min_iter: Annotated[int, Field(ge=1)] | None = None
    max_iter: Annotated[int, Field(ge=1)] | None = None
    s: Annotated[int, Field(ge=0)] | None = None
    eta: Annotated[int, Field(ge=2)] = 3
    strict: bool = True

    @model_validator(mode="after")
    def _check(self) -> EarlyTerminate:
        if self.min_iter is None and (self.max_iter is None or self.s is None):
            raise ValueError("hyperband needs min_iter, or max_iter and s")
        return self


class OptunaOptions(StrictModel):
    """Optuna's sampler (used by bayes) and pruner; options go to their constructors."""

    sampler: Literal["tpe", "cmaes", "gp", "qmc", "random"] = "tpe"
    # None becomes "hyperband" when the spec has early_terminate, else "none".
    pruner: Literal["hyperband", "median", "sha", "threshold", "percentile", "none"] | None = None
    sampler_options: dict[str, Any] = {}
    pruner_options: dict[str, Any] = {}
    seed: int = 0


def metrics_problem(metrics: list[Metric]) -> str | None:
    """Why a `metrics:` list cannot be a multi-objective study, or None."""
    if len(metrics) < 2:
        return f"needs at least 2 metrics (got {len(metrics)}); for one, use metric:"
    names = [m.name for m in metrics]
    twice = sorted({n for n in names if names.count(n) > 1})
    return f"names {', '.join(twice)} twice" if twice else None


def chosen_metric(metric: Metric | None, metrics: list[Metric] | None) -> Metric | None:
    """The sweep's metric: `metrics[0]` when several are given (a `metric:` beside them must
    be that one, or it is refused), else `metric`."""
    if not metrics:
        return metric
    if metric is not None and metric != metrics[0]:
        raise ValueError(BOTH_METRIC_KEYS)
    return metrics[0]


def optuna_problems(options: OptunaOptions, objectives: int) -> list[tuple[tuple[Any, ...], str]]:
    """Options Optuna's constructors would refuse, packages the sampler needs, and a sampler
    or pruner that cannot take `objectives` objectives."""
    import importlib.util
    import inspect

    import optuna

    problems = [
        (("sampler",), f"{options.sampler} needs the package '{package}' (pip install {package})")
        for package in SAMPLER_PACKAGES.get(options.sampler, ())
        if importlib.util.find_spec(package) is None
    ]
    if objectives > 1 and options.sampler in SINGLE_OBJECTIVE_SAMPLERS:
        problems.append((("sampler",), MULTI_OBJECTIVE_SAMPLER.format(sampler=options.sampler)))
    if objectives > 1 and options.pruner != "none":
        what = f"optuna.pruner: {options.pruner}"
        problems.append((("pruner",), MULTI_OBJECTIVE_PRUNING.format(what=what)))
    for field, module, name in (
        ("sampler_options", optuna.samplers, SAMPLERS[options.sampler]),
        ("pruner_options", optuna.pruners, PRUNERS[options.pruner]),
    ):
        accepted = set(inspect.signature(getattr(module, name)).parameters) - {"seed"}
        for key in getattr(options, field):
            if key == "seed":
                problems.append(((field, key), "set optuna.seed instead"))
            elif key not in accepted:
                hint = did_you_mean(key, sorted(accepted))
                problems.append(((field, key), f"not an option of {name}{hint}"))
    return problems
