"""Cost of experiment logging: trainer tokens/s with the ExperimentLogger on, against off.

Three arms on the `tiny` preset, in this process, their order rotated every repetition so
that drift in the machine's load falls on all of them: no logger at all (the reference), the
logger with wandb `disabled` (JSONL mirror only), and with wandb `offline` (JSONL + a real
offline run). Each run's figure is trained tokens / training seconds (`train()`'s own
`tokens` and `elapsed_s`, which include every `report` call); the table shows medians and
bests. Measured at the preset's `log_every` and at `log_every=1` (one `wandb.log` per
optimizer step, the worst case). On a shared machine the A/B ratio is noisy, so the same
runs also give the in-run cost: seconds spent inside `report` / training seconds.
Target: offline logging costs under 2% of tokens/s.

    .venv/bin/python bench/logging.py [--steps 40] [--repeats 5]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Python puts this script's folder first on sys.path, where this file's name would shadow the
# standard library's `logging` (and bench/trainer.py the `trainer` package): drop it.
_HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from orchestrator.experiment_log import ExperimentLogger  # noqa: E402
from trainer.config import load_config  # noqa: E402
from trainer.train import train  # noqa: E402

ARMS = ("no logger", "logger disabled", "logger offline")


def one_run(arm: str, overrides: dict, workdir: Path) -> tuple[float, float, float]:
    """One training run: its tokens/s, the fraction of its time spent inside `report`, and
    the logger's set-up + finish seconds."""
    config = load_config("tiny", overrides)
    if arm == "no logger":
        result = train(config)
        return result["tokens"] / result["elapsed_s"], 0.0, 0.0
    began = time.perf_counter()
    logger = ExperimentLogger(
        "bench-logging",
        f"{arm}-{overrides['train.log_every']}",
        config=config,
        mode=arm.removeprefix("logger "),
        dir=workdir,
    )
    setup = time.perf_counter() - began
    in_report = 0.0

    def report(metrics: dict) -> None:
        nonlocal in_report
        began = time.perf_counter()
        logger.log_metrics(metrics)
        in_report += time.perf_counter() - began

    result = train(config, report=report)
    began = time.perf_counter()
    logger.finish()
    speed = result["tokens"] / result["elapsed_s"]
    return speed, in_report / result["elapsed_s"], setup + time.perf_counter() - began


def cost_per_report(calls: int, workdir: Path) -> dict[str, float]:
    """Microseconds per `log_metrics` call with a trainer-shaped report, per mode."""
    report = {"step": 0, "tokens": 0, "elapsed_s": 0.0, "train_loss": 3.0, "lr": 1e-3}
    report |= {"grad_norm": 0.5, "step_time_s": 0.05, "tokens_per_s": 1e4, "memory_mb": 100.0}
    costs = {}
    for mode in ("disabled", "offline"):
        with ExperimentLogger("bench-logging", f"calls-{mode}", mode=mode, dir=workdir) as logger:
            began = time.perf_counter()
            for step in range(calls):
                logger.log_metrics(report | {"step": step, "elapsed_s": step * 0.01})
            costs[mode] = (time.perf_counter() - began) / calls * 1e6
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-logging-"))
    preset_log_every = load_config("tiny").train.log_every

    train(load_config("tiny", {"train.max_steps": 5}))  # warm-up: data cache, kernels
    for log_every in (preset_log_every, 1):
        overrides = {"train.max_steps": args.steps, "train.log_every": log_every}
        overrides["train.eval_every"] = args.steps
        speeds: dict[str, list[float]] = {arm: [] for arm in ARMS}
        in_report: dict[str, list[float]] = {arm: [] for arm in ARMS}
        overheads: list[float] = []
        for repeat in range(args.repeats):
            for i in range(len(ARMS)):
                arm = ARMS[(i + repeat) % len(ARMS)]
                speed, fraction, overhead = one_run(arm, overrides, workdir)
                speeds[arm].append(speed)
                in_report[arm].append(fraction)
                if arm == "logger offline":
                    overheads.append(overhead)
        reference, best_reference = statistics.median(speeds["no logger"]), max(speeds["no logger"])
        print(f"\nlog_every={log_every}, {args.steps} steps, {args.repeats} runs per arm:")
        for arm in ARMS:
            median, best = statistics.median(speeds[arm]), max(speeds[arm])
            print(
                f"  {arm:16s} median {median:7.0f} tokens/s (ratio {median / reference:.3f}), "
                f"best {best:7.0f} (ratio {best / best_reference:.3f}), "
                f"time in report {statistics.median(in_report[arm]):.2%}"
            )
        print(f"  offline logger init + finish: {statistics.median(overheads):.2f} s per run")
    costs = cost_per_report(2000, workdir)
    per_call = ", ".join(f"{mode} {us:.0f} us" for mode, us in costs.items())
    print(f"\nper report, 2000 log_metrics calls: {per_call}")
    print(f"(runs and JSONL under {workdir})")


if __name__ == "__main__":
    main()
