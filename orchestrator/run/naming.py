"""How a trial's wandb run is named, grouped and tagged, so that a sweep reads as one; a
secret parameter (`hf_token`) shows `<redacted>` in its name, tags and config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.plan.expand import PlannedTrial
from orchestrator.spec.model import SweepSpec
from orchestrator.tracking.redact import sanitize, secret_values
from orchestrator.tracking.run_options import RunOptions


def run_options(
    spec: SweepSpec,
    run_dir: Path,
    uid: str,
    number: int,
    params: dict[str, Any],
    planned: PlannedTrial | None,
) -> RunOptions:
    """The trial's wandb run: named `<sweep>-<number>-<short params>`, grouped by sweep,
    tagged with the sweep, method and ablation or `param=value`, its config the sweep's
    metadata and the trial's params."""
    params = sanitize(params, secret_values(params))
    ablation = planned.ablation if planned else None
    seed = planned.seed if planned else spec.seeds[0]
    constant = {k for k, p in spec.parameters.items() if p.is_constant}
    varying = {k: v for k, v in params.items() if k not in constant}
    short = ablation or ",".join(f"{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in varying.items())
    if ablation and len(spec.seeds) > 1:
        short += f",seed={seed}"
    tags = [spec.name, spec.method, *spec.wandb.tags]
    tags += [ablation] if ablation else [f"{k}={_short(v)}" for k, v in varying.items()]
    return RunOptions(
        project_name=spec.wandb.project or "orchestrate",
        entity=spec.wandb.entity,
        experiment_name=f"{spec.name}-{number}-{short}"[:128].rstrip("-"),
        tags=list(dict.fromkeys(t[:64] for t in tags if t)),
        group=spec.wandb.group or spec.name,
        job_type="trial",
        mode=spec.wandb.mode,
        dir=str(run_dir),
        run_id=f"{uid}-{number:04d}",
        config={
            "sweep": {
                "name": spec.name,
                "method": spec.method,
                "trial": number,
                "seed": seed,
                "ablation": ablation,
                "spec_hash": spec.spec_hash,
            },
            "params": params,
        },
    )


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
