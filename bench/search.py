"""Search quality: at equal compute, how close each method gets to the best configuration.

Grid, random, TPE, TPE + hyperband and random + hyperband, each built exactly as a sweep
builds it: a `SweepSpec` from `load_spec` on a YAML file, its plan from `plan.expand`, its
study from `plan.search.make_sampler`/`make_pruner`, its points enqueued and asked for as the
controller does (`store.enqueue_plan`, `study.ask`, `plan.search.suggest`), each report
told to the study at its step and the pruner asked. What is measured is our configuration of
the methods, not a re-implementation of them.

**The synthetic part** (seconds, no download, no Ray): `lm_surface`, a multi-fidelity
function shaped like a small language model's validation loss over lr (log scale), warm-up,
weight decay and beta2. Its final value (fidelity 1) has a known optimum, 2.0 at lr 3.16e-3,
warm-up 0.3, weight decay 0.105, beta2 0.979; the best lr moves with the warm-up (a curved
valley) and lr past 3e-2 diverges. A trial reports `STEPS` values on its way there: a
learning curve from ln(1024) down to the final value whose speed rises with lr (the
short-horizon bias: early on, a too-high lr looks best) plus noise that shrinks to 0 at the
last step. So the low fidelities hyperband judges on are biased and noisier than the full
one, as a real sweep's are. Trials run one after another in this process (a sweep with one
slot); compute is fidelity units, one per reported step: a pruned trial costs the steps it
ran. Printed per method: the compute to reach within 1% of the optimum (a completed trial
with final value <= 2.02; median over seeds, and in how many seeds it happened within the
budget), the gap left at the budget, and the ratio against random search.

**The real part**: the tiny trainer on lr x warm-up x weight decay (as `sweeps/tpe.yaml`),
random against TPE + hyperband at an equal trial budget, each a real sweep through
`Controller` on a local Ray of 2 CPUs; best val_loss and optimizer steps spent.

    python -m bench.search [--seeds 10] [--budget 200] [--min-iter 3] [--no-trainer] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from orchestrator import store
from orchestrator.plan.expand import expand
from orchestrator.plan.search import make_pruner, make_sampler, suggest
from orchestrator.spec import SweepSpec, load_spec

STEPS = 27  # reports per full trial: fidelity 1/27 .. 1
OPTIMUM = 2.0  # lm_surface's final value at its best point
THRESHOLD = 0.01  # "within 1% of the optimum"
START_LOSS = math.log(1024)  # where every learning curve starts: a uniform guess
NOISE = 0.05  # the noise's standard deviation at fidelity 0 (0 at fidelity 1)
BEST_LOG_LR = -2.5
# How much faster a 10x higher lr learns (the curve's exponent grows 10**LR_BIAS-fold): a mild
# short-horizon bias. Hyperband's standing depends on it and on its first rung (--min-iter):
# the stronger the bias and the earlier the rung, the more often it stops the eventual best.
LR_BIAS = 0.1

SPACE = """
    lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-1}
    warmup: {distribution: uniform, min: 0.0, max: 1.0}
    weight_decay: {distribution: uniform, min: 0.0, max: 0.3}
    beta2: {distribution: uniform, min: 0.9, max: 0.999}
"""
# A grid of round values that fits the budget (162 points), as a person would write it.
GRID = """
    lr: {values: [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2]}
    warmup: {values: [0.1, 0.5, 0.9]}
    weight_decay: {values: [0.05, 0.15, 0.25]}
    beta2: {values: [0.9, 0.95, 0.99]}
"""
MIN_ITER = 3  # hyperband's first rung, in steps: STEPS / eta**2, rungs at 3, 9 and 27
HYPERBAND = "early_terminate: {{type: hyperband, min_iter: {min_iter}, eta: 3}}"
# name -> (method, parameters, hyperband); bayes takes the spec's default sampler, TPE
METHODS = {
    "grid": ("grid", GRID, False),
    "random": ("random", SPACE, False),
    "tpe": ("bayes", SPACE, False),
    "tpe+hyperband": ("bayes", SPACE, True),
    "random+hyperband": ("random", SPACE, True),
}


def final_loss(config: dict[str, Any]) -> float:
    """lm_surface at fidelity 1: OPTIMUM plus a curved valley in (log lr, warm-up), bowls in
    weight decay and beta2, and a cliff past lr 3e-2."""
    log_lr = math.log10(float(config["lr"]))
    warmup = float(config["warmup"])
    u_lr, u_wd = (log_lr + 4) / 3, float(config["weight_decay"]) / 0.3
    u_beta2 = (float(config["beta2"]) - 0.9) / 0.099
    loss = OPTIMUM + 3.0 * (u_lr - 0.5 - 0.3 * (warmup - 0.3)) ** 2 + 0.3 * (warmup - 0.3) ** 2
    loss += 0.15 * (u_wd - 0.35) ** 2 + 0.3 * (u_beta2 - 0.8) ** 2
    return loss + 2.0 * max(0.0, log_lr + 1.5)


def lm_surface(config: dict[str, Any], fidelity: float, rng: np.random.Generator) -> float:
    """The loss after `fidelity` (0..1] of the training: a learning curve that reaches
    `final_loss` at 1, faster for a higher lr, with noise that vanishes at 1."""
    final = final_loss(config)
    speed = 3.0 * 10 ** (LR_BIAS * (math.log10(float(config["lr"])) - BEST_LOG_LR))
    remaining = (1.0 - fidelity) ** speed
    return final + (START_LOSS - final) * remaining + NOISE * (1.0 - fidelity) * rng.normal()


def lm_program(config: dict[str, Any], report: Any, checkpoint_dir: str) -> dict[str, float]:
    """`lm_surface` as a sweep's program (`program: bench.search:lm_program`): what the specs
    of this benchmark name, so they load and could run as real sweeps."""
    rng = np.random.default_rng(int(config.get("seed", 0)))
    for step in range(1, STEPS + 1):
        loss = lm_surface(config, step / STEPS, rng)
        if report({"step": step, "loss": loss}) and step < STEPS:
            return {"outcome": "stopped", "loss": loss}
    return {"loss": loss}


def method_spec(
    name: str, seed: int, budget: int, directory: Path, min_iter: int = MIN_ITER
) -> SweepSpec:
    """The method's spec, loaded as any sweep's is (seed via an override, as on the CLI);
    its run_cap lets as many trials as the budget can pay for (a pruned one costs at least
    hyperband's first rung, min_iter steps)."""
    method, parameters, hyperband = METHODS[name]
    trials = budget // min_iter + 1 if hyperband else math.ceil(budget / STEPS)
    indented = "\n".join("  " + line.strip() for line in parameters.strip().splitlines())
    text = (
        f"name: search-{name.replace('+', '-')}-seed{seed}\nmethod: {method}\n"
        "program: bench.search:lm_program\nmetric: {name: loss, goal: minimize}\n"
        f"run_cap: {trials}\nwandb: {{mode: disabled}}\n"
        f"{HYPERBAND.format(min_iter=min_iter) if hyperband else ''}\nparameters:\n{indented}\n"
    )
    if method == "grid":
        text = text.replace(f"run_cap: {trials}\n", "")
    path = directory / f"{name.replace('+', '-')}.yaml"
    path.write_text(text)
    return load_spec(path, [f"optuna.seed={seed}"])


@dataclass
class SearchRun:
    """One method on one seed: compute when it first got within THRESHOLD (None: never
    within the budget), the best final value within the budget, the trials it ran."""

    reached_at: int | None
    best: float
    trials: int
    pruned: int


def run_search(spec: SweepSpec, budget: int, seed: int) -> SearchRun:
    """The sweep the controller would run with one slot, without Ray: trials asked in turn,
    each report told at its step and the pruner asked, until `budget` units are spent."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(  # named as the controller names it: hyperband's brackets
        study_name=spec.study_name or spec.name,  # are drawn from the name and trial number
        sampler=make_sampler(spec),
        pruner=make_pruner(spec),
    )
    plan = expand(spec)
    distributions = store.distributions_for_plan([p.params for p in plan])
    store.enqueue_plan(study, [p.params for p in plan])
    rng = np.random.default_rng(10_000 + seed)
    spent, best, reached_at, pruned, trials = 0, math.inf, None, 0, 0
    target = OPTIMUM * (1 + THRESHOLD)
    for trials in itertools.count(1):
        if spent >= budget or (plan and trials > len(plan)):
            trials -= 1
            break
        trial = study.ask(distributions or None)
        index = trial.user_attrs.get(store.attrs.PLAN_INDEX)
        params = plan[index].params if index is not None else suggest(trial, spec)
        for step in range(1, STEPS + 1):
            value = lm_surface(params, step / STEPS, rng)
            spent += 1
            trial.report(value, step)
            if step < STEPS and trial.should_prune():  # at its last step it is complete
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                pruned += 1
                break
        else:
            study.tell(trial, value)
            if spent <= budget:
                best = min(best, value)
                if reached_at is None and value <= target:
                    reached_at = spent
    return SearchRun(reached_at, best, trials, pruned)


def synthetic(
    seeds: int, budget_trials: int, directory: Path, min_iter: int = MIN_ITER
) -> dict[str, float | None]:
    """Every method on every seed; prints a line per method, returns median compute to 1%."""
    budget = budget_trials * STEPS
    print(
        f"lm_surface: 4 parameters, {STEPS} steps per full trial, optimum {OPTIMUM}; "
        f"budget {budget} steps (= {budget_trials} full trials), {seeds} seeds, one slot; "
        f"hyperband min_iter {min_iter}, eta 3"
    )
    medians: dict[str, float | None] = {}
    for name in METHODS:
        began = time.perf_counter()
        runs = [
            run_search(method_spec(name, seed, budget, directory, min_iter), budget, seed)
            for seed in range(seeds)
        ]
        reached = [r.reached_at for r in runs if r.reached_at is not None]
        # A seed that never got there counts as beyond the budget (so the median is honest).
        medians[name] = median_with_misses(reached, len(runs), budget)
        gaps = [(r.best - OPTIMUM) / OPTIMUM for r in runs]
        shown = f"{medians[name]:6.0f}" if medians[name] is not None else f">{budget:5d}"
        print(
            f"  {name:17s} compute to 1%: {shown} steps (median; reached in "
            f"{len(reached)}/{len(runs)} seeds)  gap at budget: median "
            f"{statistics.median(gaps):.2%} (worst {max(gaps):.2%})  trials "
            f"{statistics.median(r.trials for r in runs):.0f}, pruned "
            f"{statistics.median(r.pruned for r in runs):.0f}  ({time.perf_counter() - began:.0f} s)",
            flush=True,
        )
    return medians


def median_with_misses(reached: list[int], runs: int, budget: int) -> float | None:
    """The median compute over `runs` seeds where only `reached` got there: None when the
    median seed did not (it lies beyond the budget)."""
    values = sorted(reached) + [math.inf] * (runs - len(reached))
    middle = statistics.median(values)
    return None if math.isinf(middle) else middle


def ratio_line(medians: dict[str, float | None], budget: int) -> str:
    """`compute to 1% of optimum vs random: tpe 0.42, ...`; a method (or random) that did not
    get there in most seeds is shown as a bound."""
    base = medians["random"]
    parts = []
    for name, value in medians.items():
        if name == "random":
            continue
        if base is None and value is None:
            parts.append(f"{name} n/a (neither reached 1% in most seeds)")
        elif base is None:
            parts.append(f"{name} <{value / budget:.2f}")
        elif value is None:
            parts.append(f"{name} >{budget / base:.2f}")
        else:
            parts.append(f"{name} {value / base:.2f}")
    return "compute to 1% of optimum vs random: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per method")
    parser.add_argument(
        "--budget", type=int, default=200, help="compute per search, in full trials"
    )
    parser.add_argument(
        "--min-iter", type=int, default=MIN_ITER, help="hyperband's first rung, in steps"
    )
    parser.add_argument("--no-trainer", action="store_true", help="skip the real trainer case")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 seeds, small budgets")
    args = parser.parse_args()
    for key, value in (("WANDB_MODE", "offline"), ("WANDB_SILENT", "true")):
        os.environ.setdefault(key, value)
    seeds, budget = (2, 60) if args.quick else (args.seeds, args.budget)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        medians = synthetic(seeds, budget, Path(tmp), args.min_iter)
        trainer_line = None
        if not args.no_trainer:
            from bench.search_trainer import trainer_case

            trainer_line = trainer_case(Path(tmp) / "trainer", quick=args.quick)
    print(f"({time.perf_counter() - began:.0f} s)")
    if trainer_line:
        print(trainer_line)
    print(ratio_line(medians, budget * STEPS))


if __name__ == "__main__":
    main()
