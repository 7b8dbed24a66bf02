"""Cost of experiment logging: trainer tokens/s with the ExperimentLogger on, against off.

Short runs of the `tiny` preset in this process, in pairs: logging off (`report` does
nothing) and the logger with wandb `offline` (its JSONL mirror + a real offline run), the
order alternating from pair to pair. A run is measured between its first and last report, so
set-up, the final evaluation and the logger's init and finish are left out and every
`report` call in between counts. Each pair gives a ratio (its two runs are neighbours in
time); the median over the pairs is printed against the target: logging costs under 2%.

Two figures, each from its own pairs. Tokens per CPU second on one torch thread, counting this
process's CPU (all its threads, wandb's included) and its wandb-core's: CPU seconds on one
thread barely move on a busy machine, and none of the logger's work can hide on an idle core.
And tokens per wall-clock second on the default threads, the trainer's real speed: on a quiet
machine its pairs agree within 1%, on a shared 2-core machine they were seen from 0.07 to 2.6
(the spread is printed), so read the CPU figure there. Measured at the preset's `log_every`
and at `log_every=1` (one `wandb.log` per optimizer step, the worst case); last, the cost of
one `log_metrics` call per wandb mode.

    python -m bench.logging [--steps 60] [--pairs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from orchestrator.tracking.logger import ExperimentLogger
from trainer.config import load_config
from trainer.train import train

TARGET = 0.02  # the largest acceptable loss of tokens/s


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and its wandb-core service."""
    total = time.process_time()
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "wandb-core":
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def one_run(logged: bool, overrides: dict[str, Any], workdir: Path) -> tuple[float, float]:
    """One training run: tokens per wall-clock second and per CPU second between its first
    and last report."""
    config = load_config("tiny", overrides)
    logger = None
    if logged:
        logger = ExperimentLogger("bench-logging", "on", config=config, mode="offline", dir=workdir)
    reports: list[dict[str, Any]] = []
    cpu: list[float] = []

    def report(metrics: dict[str, Any]) -> None:
        cpu.append(cpu_seconds() if not cpu else time.process_time())
        reports.append(metrics)
        if logger is not None:
            logger.log_metrics(metrics)

    train(config, report=report)
    cpu[-1] += cpu_seconds() - time.process_time()  # wandb-core's part, up to now
    if logger is not None:
        logger.finish()
    tokens = reports[-1]["tokens"] - reports[0]["tokens"]
    wall_s = reports[-1]["elapsed_s"] - reports[0]["elapsed_s"]
    return tokens / wall_s, tokens / (cpu[-1] - cpu[0])


def compare(log_every: int, steps: int, pairs: int, workdir: Path) -> None:
    """Print the median ratios, logger on to off, at one `log_every`."""
    overrides = {"train.max_steps": steps, "train.log_every": log_every}
    overrides |= {"train.eval_every": steps, "train.eval_batches": 1, "train.sample_tokens": 0}
    threads = torch.get_num_threads()
    print(f"\nlog_every={log_every}: {pairs} pairs of {steps}-step runs")
    for label, num_threads, figure in (("CPU", 1, 1), ("wall", threads, 0)):
        torch.set_num_threads(num_threads)
        ratios, speeds = [], []
        for pair in range(pairs):
            speed = {}
            for logged in (pair % 2 == 1, pair % 2 == 0):  # off first, then on first, ...
                speed[logged] = one_run(logged, overrides, workdir)[figure]
            ratios.append(speed[True] / speed[False])
            speeds.append(speed[False])
        ratio = statistics.median(ratios)
        verdict = "within" if 1 - ratio < TARGET else "OVER"
        print(
            f"  {label:4s} ({num_threads} thread{'s' * (num_threads > 1)}): "
            f"off {statistics.median(speeds):6.0f} tokens/s, on/off {ratio:.3f} "
            f"(pairs {min(ratios):.3f}..{max(ratios):.3f}), cost {1 - ratio:+.1%}: "
            f"{verdict} the {TARGET:.0%} target"
        )
    torch.set_num_threads(threads)


def cost_per_call(calls: int, workdir: Path) -> str:
    """Microseconds per `log_metrics` call with a trainer-shaped report, per mode."""
    report = {"step": 0, "tokens": 0, "elapsed_s": 0.0, "train_loss": 3.0, "lr": 1e-3}
    report |= {"grad_norm": 0.5, "step_time_s": 0.05, "tokens_per_s": 1e4, "memory_mb": 100.0}
    costs = []
    for mode in ("disabled", "offline"):
        with ExperimentLogger("bench-logging", f"calls-{mode}", mode=mode, dir=workdir) as logger:
            began = time.perf_counter()
            for step in range(calls):
                logger.log_metrics(report | {"step": step, "elapsed_s": step * 0.01})
            costs.append(f"{mode} {(time.perf_counter() - began) / calls * 1e6:.0f} us")
    return ", ".join(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per run")
    parser.add_argument("--pairs", type=int, default=5, help="on/off pairs per figure")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    began = time.perf_counter()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-logging-") as workdir:
        train(load_config("tiny", {"train.max_steps": 5}))  # warm-up: data cache, kernels
        for log_every in (load_config("tiny").train.log_every, 1):
            compare(log_every, args.steps, args.pairs, Path(workdir))
        print(f"\nper log_metrics call (2000 calls): {cost_per_call(2000, Path(workdir))}")
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
