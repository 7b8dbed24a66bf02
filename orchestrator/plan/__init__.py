"""A sweep's trials: the fixed plan of a grid, random or ablation sweep (`expand`), and
Optuna's search space, sampler and pruner for a bayes sweep (`search`)."""

from orchestrator.plan.expand import PlannedTrial, expand, plan_summary, trainer_overrides
from orchestrator.plan.search import make_pruner, make_sampler, param_distributions, suggest

__all__ = [
    "PlannedTrial",
    "expand",
    "make_pruner",
    "make_sampler",
    "param_distributions",
    "plan_summary",
    "suggest",
    "trainer_overrides",
]
