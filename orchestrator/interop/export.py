"""`orchestrate export-wandb SPEC.yaml`: the spec as a pure W&B sweep config, for `wandb sweep`.

The W&B keys are kept as written (nested parameters stay nested). What W&B can express in
its own terms is translated exactly: the shared trainer becomes the `command` that runs it
(`${env} ${interpreter} -m trainer --preset BASE ${args}`), `trainer:` values become constant
parameters, `wandb.project`/`wandb.entity` the top-level keys, and several seeds of a grid one
more grid axis. Everything else is left out with one warning each, naming the key: W&B has
no ablations (an error: there is nothing to export) and no Python-function programs (an
error), and it ignores resources, retries, concurrency, Optuna's samplers and pruners, the
storage, and wandb tags, group and mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.errors import UserError
from orchestrator.spec.model import SweepSpec

WANDB_KEYS = (
    "name",
    "description",
    "method",
    "metric",
    "metrics",  # several: what W&B's Optuna and Ax scheduler engines optimise
    "run_cap",
    "early_terminate",
    "program",
    "command",
    "controller",
)
# Our extensions W&B cannot express, and what the warning says about each.
DROPPED = {
    "resources": "per trial; give each agent its share with `orchestrate agent --cpus/--gpus`",
    "max_concurrent": "W&B runs as many runs as there are agents",
    "max_retries": "a W&B agent does not retry a failed run",
    "optuna": "W&B's bayes uses its own Gaussian process, and early_terminate its hyperband",
    "storage": "W&B keeps the sweep's state on its server",
    "study_name": "W&B keeps the sweep's state on its server",
    "checkpoints": "a W&B agent's run checkpoints wherever its program writes them",
}
WANDB_DROPPED = {
    "tags": "set them in the program's wandb.init()",
    "group": "W&B groups a sweep's runs by the sweep",
    "mode": "set WANDB_MODE where the agents run",
}


def export_wandb(spec: SweepSpec, raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The W&B sweep config for `spec` (read from `raw`, the YAML as written), and warnings."""
    where = str(spec.path)
    if spec.method == "ablation":
        raise UserError(
            f"{where}: method: ablation has no W&B equivalent (W&B sweeps have no baseline "
            "and named ablations); run it with `orchestrate`"
        )
    try:
        runs, warnings = spec.trial_program.wandb_command(raw)
    except UserError as error:
        raise UserError(f"{where}: {error.lines[0]}") from None
    written = {k: v for k, v in raw.items() if k not in ("program", "command")} | runs
    config = {"name": spec.name} | {key: written[key] for key in WANDB_KEYS if key in written}
    if spec.multi_objective:  # W&B's own engine optimises one metric: the first
        config["metric"] = spec.metric.model_dump(exclude_none=True)
        warnings.append(
            f"metrics: W&B's own engine optimises metric ({spec.metric.label}) alone; for the "
            "Pareto front of all of them run the sweep's scheduler with engine optuna or ax"
        )
    parameters = dict(raw.get("parameters") or {})
    for key, value in spec.trainer.items():  # fixed values: constant parameters
        if key not in spec.parameters:
            parameters[key] = {"value": value}
    seed_key = spec.trial_program.seed_key or "seed"
    if len(spec.seeds) > 1:
        parameters[seed_key] = {"values": list(spec.seeds)}
        if spec.method != "grid":
            warnings.append(
                f"seeds: W&B draws a seed per run from {spec.seeds}; it cannot repeat each "
                f"{spec.method} configuration once per seed"
            )
    elif spec.seeds != [0] and spec.trial_program.seed_key:
        parameters[seed_key] = {"value": spec.seeds[0]}
    config["parameters"] = parameters
    for key in ("project", "entity"):
        value = getattr(spec.wandb, key)
        if value:
            config[key] = value
    for key, why in DROPPED.items():
        if key in raw:
            warnings.append(f"{key}: left out ({why})")
    for key, why in WANDB_DROPPED.items():
        if (raw.get("wandb") or {}).get(key) is not None:
            warnings.append(f"wandb.{key}: left out ({why})")
    if spec.method == "grid" and any(
        p.distribution == "q_uniform" for p in spec.parameters.values()
    ):
        warnings.append(
            "parameters: W&B's grid over q_uniform leaves out max (orchestrate includes it)"
        )
    return config, [f"warning: {where}: {line}" for line in warnings]


def export_file(path: str | Path) -> tuple[str, list[str]]:
    """The W&B sweep YAML for the spec at `path`, and warnings."""
    import yaml

    from orchestrator.spec import load_spec
    from orchestrator.spec.load import parse_yaml

    spec = load_spec(path)  # a bad spec is refused here, every problem at once
    raw, _, _ = parse_yaml(Path(path).read_text(), str(path))
    config, warnings = export_wandb(spec, raw)
    return yaml.safe_dump(config, sort_keys=False), warnings
