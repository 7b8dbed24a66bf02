"""bench.search's real case: the tiny trainer on lr x warm-up x weight decay, as
`sweeps/tpe.yaml` sweeps it, random against TPE + hyperband at an equal trial budget.

Each is a real sweep: a YAML file, `load_spec`, `Controller` on a local Ray of 2 CPUs (2
slots), the store read back with `load_sweep`. Compute is optimizer steps: a pruned trial
counts the steps up to the last val_loss it reported (where the pruner stopped it).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import QuietDisplay

SPEC = """\
name: search-trainer-{label}
method: {method}
metric: {{name: val_loss, goal: minimize}}
run_cap: {trials}
parameters:
  optimizer.lr: {{distribution: log_uniform_values, min: 3.0e-4, max: 3.0e-2}}
  optimizer.warmup_steps: {{values: [0, 10, 30]}}
  optimizer.weight_decay: {{distribution: uniform, min: 0.0, max: 0.2}}
{early_terminate}optuna:
  sampler: tpe
  sampler_options: {{n_startup_trials: 4}}
base: tiny
trainer:
  train.max_steps: {steps}
  train.eval_every: {eval_every}
  train.sample_tokens: 0
wandb: {{mode: disabled}}  # search quality alone; bench.logging measures the logger
"""
HYPERBAND = "early_terminate: {type: hyperband, min_iter: 2, eta: 2}\n"  # as sweeps/tpe.yaml


def one_sweep(
    label: str, directory: Path, trials: int, steps: int, eval_every: int
) -> tuple[float, int]:
    """Run one sweep and print its line; returns its best val_loss and the steps it spent."""
    from orchestrator.results.sweep import load_sweep
    from orchestrator.run.controller import Controller
    from orchestrator.spec import load_spec

    method, pruned = ("random", "") if label == "random" else ("bayes", HYPERBAND)
    text = SPEC.format(
        label=label.replace("+", "-"),
        method=method,
        trials=trials,
        early_terminate=pruned,
        steps=steps,
        eval_every=eval_every,
    )
    path = directory / f"{label.replace('+', '-')}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    began = time.perf_counter()
    outcome = Controller(
        load_spec(path), runs_root=directory / "runs", num_cpus=2, display=QuietDisplay()
    ).run()
    seconds = time.perf_counter() - began
    sweep = load_sweep(outcome.run_dir)
    spent = sum(t.last_step or 0 for t in sweep)
    best = sweep.best.value if sweep.best else float("nan")
    counts = ", ".join(f"{n} {state}" for state, n in sorted(sweep.counts().items()))
    print(
        f"  {label:14s} best val_loss {best:.4f}  steps spent {spent:5d} "
        f"(of {trials * steps} for {trials} full trials)  {counts}  ({seconds:.0f} s)",
        flush=True,
    )
    return best, spent


def trainer_case(directory: Path, quick: bool = False) -> str:
    """Random and TPE + hyperband on the tiny trainer; returns the comparison's line."""
    from orchestrator.run import setup as sweep_setup

    trials, steps, eval_every = (4, 40, 10) if quick else (12, 120, 20)
    print(
        f"\ntiny trainer: lr x warm-up x weight decay, {trials} trials of {steps} steps "
        f"(val_loss every {eval_every}), 2 slots, one seed",
        flush=True,
    )
    sweep_setup.start_ray(None, 2, None)  # as `orchestrate --num-cpus 2` starts it, once
    try:
        found = {
            label: one_sweep(label, directory, trials, steps, eval_every)
            for label in ("random", "tpe+hyperband")
        }
    finally:
        sweep_setup.stop_ray()
    (random_best, random_steps), (tpe_best, tpe_steps) = found["random"], found["tpe+hyperband"]
    return (
        f"tiny trainer, tpe+hyperband vs random at {trials} trials: best val_loss "
        f"{tpe_best:.4f} vs {random_best:.4f}, steps spent {tpe_steps / random_steps:.2f}"
    )
