"""Orchestration overhead: 500 no-op trials, each reporting 3 metrics, with the store on.

Our controller (journal-file Optuna store, streamed metrics) against Ray Tune (`Tuner`, same
trials, same resources, `reuse_actors=True`), both on the same warm local Ray in this process.
Prints trials/s, overhead per trial and the ratio. Target: at least 5x Ray Tune's throughput.

    .venv/bin/python -m bench.overhead [--trials 500]
    .venv/bin/python -m bench.overhead --scale   # 1k/5k/10k trials, Ray Tune at 1k/2k
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import QuietDisplay, start_ray, write_spec

SPEC = """
    name: overhead
    method: grid
    program: sweep_programs:noop
    metric: {{name: loss, goal: minimize}}
    wandb: {{mode: disabled}}  # orchestration alone, as Ray Tune runs here without a logger
    parameters:
      x: {{values: {values}}}
"""


def ours(trials: int, workdir: Path) -> float:
    from orchestrator.run.controller import Controller
    from orchestrator.spec import load_spec

    spec = load_spec(write_spec(workdir / "ours", SPEC.format(values=list(range(trials)))))
    controller = Controller(spec, runs_root=workdir / "runs", display=QuietDisplay())
    began = time.perf_counter()
    outcome = controller.run()
    elapsed = time.perf_counter() - began
    assert outcome.counts == {"complete": trials}, outcome.counts
    return elapsed


def ray_tune(trials: int, workdir: Path) -> float:
    from ray import tune

    def trainable(config):
        for step in range(3):
            tune.report({"loss": config["x"] + step, "step": step})

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"x": tune.grid_search(list(range(trials)))},
        tune_config=tune.TuneConfig(metric="loss", mode="min", reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(workdir / "tune"), verbose=0),
    )
    began = time.perf_counter()
    results = tuner.fit()
    elapsed = time.perf_counter() - began
    assert len(results) == trials and not results.errors
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument(
        "--scale",
        action="store_true",
        help="trials/s at 1,000, 5,000 and 10,000 trials, Ray Tune at 1,000 and 2,000",
    )
    args = parser.parse_args()
    start_ray(num_cpus=2)
    if args.scale:
        return scale()
    with tempfile.TemporaryDirectory() as tmp:
        ours(20, Path(tmp) / "warm")  # warm the workers, as Tune's are after its first trials
        our_seconds = ours(args.trials, Path(tmp))
        tune_seconds = ray_tune(args.trials, Path(tmp))
    n = args.trials
    print(f"{n} no-op trials x 3 reports, 2 slots, journal-file store")
    print(f"  orchestrate: {n / our_seconds:8.1f} trials/s  {1000 * our_seconds / n:6.2f} ms/trial")
    print(
        f"  Ray Tune:    {n / tune_seconds:8.1f} trials/s  {1000 * tune_seconds / n:6.2f} ms/trial"
    )
    print(
        f"  ratio (orchestrate / Ray Tune throughput): {tune_seconds / our_seconds:.1f}x  (target >= 5x)"
    )


def scale(
    ours_at: tuple[int, ...] = (1000, 5000, 10000), tune_at: tuple[int, ...] = (1000, 2000)
) -> None:
    """How throughput holds as a sweep grows (target: 10k within 15% of 1k), against Ray Tune
    at the sizes it finishes in minutes, all in this process on one warm Ray."""
    rates: dict[str, dict[int, float]] = {"orchestrate": {}, "Ray Tune": {}}
    with tempfile.TemporaryDirectory() as tmp:
        ours(20, Path(tmp) / "warm")
        for n in ours_at:
            rates["orchestrate"][n] = n / ours(n, Path(tmp) / f"ours-{n}")
            print(
                f"  orchestrate {n:6d} trials: {rates['orchestrate'][n]:7.1f} trials/s", flush=True
            )
        for n in tune_at:
            rates["Ray Tune"][n] = n / ray_tune(n, Path(tmp) / f"tune-{n}")
            print(f"  Ray Tune    {n:6d} trials: {rates['Ray Tune'][n]:7.1f} trials/s", flush=True)
    ours_rates, tune_rates = rates["orchestrate"], rates["Ray Tune"]
    low, high = min(ours_rates), max(ours_rates)
    common = max(set(ours_rates) & set(tune_rates))
    print(
        f"scaling {high // 1000}k/{low // 1000}k: {ours_rates[high] / ours_rates[low]:.2f}  (target >= 0.85)"
    )
    print(f"ratio vs Ray Tune: {ours_rates[common] / tune_rates[common]:.1f}x at {common} trials")


if __name__ == "__main__":
    main()
