"""`TrialResult`: one trial as everything downstream reads it, built from the store.

`status`, `results.json`/`results.csv`, the report and `orchestrator.load_sweep` all show a
trial through this record, so they tell the same story: its state (`complete`, `fail`,
`pruned`, `running`, or `interrupted` while a stopped trial waits to be resumed), its
params, its final and best values, why it failed, where its wandb run and checkpoints are.

It is what a person reads or shares, so secrets are redacted here, once for every output: a
parameter named like a secret (`hf_token`, `api_key`) shows `<redacted>`, and its value, or
a secret environment variable's, is cut out of the failure reason and traceback (see
`tracking.redact`). The store keeps the values: a resumed trial needs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from orchestrator.store import attrs
from orchestrator.store.compute import trial_compute, worker_name
from orchestrator.store.gpu_usage import gpu_fields
from orchestrator.store.json_record import JsonRecord
from orchestrator.tracking.redact import redact_text, sanitize, secret_values

STATE_ORDER = {"complete": 0, "running": 1, "queued": 2, "interrupted": 3, "pruned": 4, "fail": 5}


@dataclass
class TrialResult(JsonRecord):
    """One trial of a sweep (the keys of `results.json`)."""

    trial: int  # Optuna's trial number
    state: str  # complete, running, queued, interrupted, pruned or fail
    params: dict[str, Any]
    value: float | None  # the metric's final value (complete trials): the first objective's
    best: float | None  # the best value it reported
    last_step: int | None  # the last step it reported: at its end, else of the metric
    reason: str | None = None  # why it failed
    final_metrics: dict[str, Any] = field(default_factory=dict)
    objectives: dict[str, float] = field(default_factory=dict)  # each metric's (complete trials)
    pareto: bool | None = None  # on the Pareto front (several metrics); None with one metric
    wandb_run: str | None = None  # the run's path once synced, else its id
    wandb_dir: str | None = None
    checkpoint_dir: str | None = None
    node: str | None = None
    retries: int = 0
    plan_index: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    elapsed_s: float | None = None
    traceback: str | None = None  # where it failed (the end of it)
    worker: str | None = None  # `<node id>:<pid>` of its last start (`store.compute`)
    compute_s: float | None = None  # elapsed_s x the cpus (or gpus) it asked for
    compute_unit: str | None = None  # cpu-s or gpu-s
    # Its GPU accounting (`store.gpu_usage`): device, share asked for, measured figures.
    gpu_device: str | None = None  # `<node>:<device ids on that node>`
    gpu_share: float | None = None  # of a device: 1, a fraction, or what gpus: auto chose
    gpu_peak_memory_mb: float | None = None
    gpu_util: float | None = None  # NVML's mean utilisation of its device (all its trials)
    tokens_per_s: float | None = None
    mfu: float | None = None  # model FLOPs utilisation against the device's bf16 peak

    @classmethod
    def from_trial(
        cls,
        trial: FrozenTrial,
        goal: str = "minimize",
        names: list[str] | None = None,
        front: set[int] | None = None,
    ) -> TrialResult:
        """The trial as the store has it, secrets redacted (module docstring). `names`: the
        study's objectives (`objective_names`); `front`: the trial numbers on its Pareto
        front, None for a study with one objective."""
        stored = trial.user_attrs
        secrets = secret_values(trial.params)
        inter = {s: v for s, v in trial.intermediate_values.items() if not math.isnan(v)}
        steps = [*inter, stored[attrs.LAST_STEP]] if attrs.LAST_STEP in stored else list(inter)
        pick = min if goal == "minimize" else max
        best = pick(inter.values()) if inter else None
        value = trial.values[0] if trial.values else None
        if value is not None:
            best = pick(best, value) if best is not None else value
        state = trial.state.name.lower()
        if trial.state == TrialState.RUNNING and stored.get(attrs.STATUS_DETAIL):
            state = stored[attrs.STATUS_DETAIL]
        elif trial.state == TrialState.RUNNING and attrs.STARTED_AT not in stored:
            state = "queued"  # dispatched, waiting for a worker
        started, ended = stored.get(attrs.STARTED_AT), stored.get(attrs.ENDED_AT)
        elapsed = round(ended - started, 3) if started and ended else None
        compute_s, compute_unit = trial_compute(stored.get(attrs.WORKER), elapsed)
        return cls(
            trial=trial.number,
            state=state,
            params=sanitize(dict(trial.params), secrets),
            value=value,
            best=best,
            last_step=max(steps) if steps else None,
            reason=_redacted(stored.get(attrs.FAILURE_REASON), secrets),
            final_metrics=sanitize(stored.get(attrs.FINAL_METRICS) or {}, secrets),
            objectives=dict(zip(names or [], trial.values or [], strict=False)),
            pareto=None if front is None else trial.number in front,
            wandb_run=stored.get(attrs.WANDB_RUN_PATH) or stored.get(attrs.WANDB_RUN_ID),
            wandb_dir=stored.get(attrs.WANDB_DIR),
            checkpoint_dir=stored.get(attrs.CHECKPOINT_DIR),
            node=stored.get(attrs.NODE),
            retries=stored.get(attrs.RETRIES, 0),
            plan_index=stored.get(attrs.PLAN_INDEX),
            started_at=started,
            ended_at=ended,
            elapsed_s=elapsed,
            traceback=_redacted(stored.get(attrs.TRACEBACK), secrets),
            worker=worker_name(stored.get(attrs.WORKER)),
            compute_s=compute_s if stored.get(attrs.WORKER) else None,
            compute_unit=compute_unit if stored.get(attrs.WORKER) else None,
            **gpu_fields(stored),
        )


def _redacted(text: str | None, secrets: list[str]) -> str | None:
    return None if text is None else redact_text(text, secrets)


def trial_results(
    study: optuna.Study, goal: str = "minimize", pareto: bool = True
) -> list[TrialResult]:
    """Every trial of the sweep, in trial order: waiting and discarded ones left out. With
    several objectives, each trial says whether it is on the Pareto front (Optuna's
    `best_trials`: the complete trials no other complete trial dominates); `pareto=False`
    leaves that out (None) for a caller that only counts, as the controller during a run."""
    names = objective_names(study)
    several = len(study.directions) > 1 and pareto
    front = {t.number for t in study.best_trials} if several else None
    return [
        TrialResult.from_trial(trial, goal, names, front)
        for trial in study.get_trials(deepcopy=False)
        if trial.state != TrialState.WAITING and not trial.user_attrs.get(attrs.DISCARDED)
    ]


def objective_names(study: optuna.Study) -> list[str]:
    """The study's objectives by name: those the sweep set (`set_metric_names`), else
    `value` for one and `value_<i>` for several (a plain Optuna study)."""
    if study.metric_names:
        return list(study.metric_names)
    count = len(study.directions)
    return ["value"] if count == 1 else [f"value_{i}" for i in range(count)]


def best_first(results: list[TrialResult], goal: str = "minimize") -> list[TrialResult]:
    """Complete trials best first (with several metrics, those on the Pareto front first,
    each part by the first metric), then running, interrupted, pruned and failed ones."""
    sign = 1 if goal == "minimize" else -1

    def rank(result: TrialResult) -> tuple:
        value = result.value if result.value is not None else result.best
        missing = value is None or not math.isfinite(value)
        off_front = result.pareto is False
        return (STATE_ORDER.get(result.state, 6), off_front, missing, sign * (value or 0.0))

    return sorted(results, key=rank)


def count_states(results: list[TrialResult]) -> dict[str, int]:
    """How many trials are in each state."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.state] = counts.get(result.state, 0) + 1
    return counts
