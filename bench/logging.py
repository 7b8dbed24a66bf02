"""Cost of experiment logging, measured finely enough to tell a 2% cost from noise.

Comparing whole training runs with the logger on and off could not: on a shared 2-core machine
their ratios ranged from 0.82 to 1.29. So the two parts are measured apart, each many times,
and combined:

1. **Per logged row, in isolation**: the real `ExperimentLogger` (JSONL mirror + a wandb
   `offline` run, and `disabled`: the JSONL alone) logs a trainer-shaped row, in blocks of
   `--rows` calls, interleaved with "off" blocks that build the same rows and log nothing, in
   a rotating order (`--blocks` of each). A block's cost is its wall time and its CPU time:
   this process's (all its threads) plus its wandb-core's (every thread, from
   /proc/PID/task/*/schedstat, in ns), after a pause that lets wandb-core finish the block's
   rows. Cost per row: (on block - neighbouring off block) / rows; the median over the
   pairs, with its IQR and a bootstrap 95% CI.
2. **Per optimizer step**: one `tiny` training run, logging off, its step times as the
   trainer measures them (`step_time_s` over each `log_every` interval, which leaves the
   report out): the median and its bootstrap CI.

The cost at the shipped `log_every` is row / (log_every x step): one row per `log_every`
steps, as a share of step time, with a CI from the two bootstraps (the two resampled
independently). Last, a check in one run: the same training with the logger switched on and
off in interleaved blocks of reports (ABBA), the relative difference of the blocks' CPU and
wall time, median over the pairs and its CI: the whole effect, wandb-core's competition for the
cores included, at a resolution the CI states.

    python -m bench.logging [--blocks 30] [--rows 200] [--steps 800] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from orchestrator.tracking.logger import ExperimentLogger
from trainer.config import load_config
from trainer.train import train

TARGET = 0.02  # the largest acceptable cost, as a share of step time
PAUSE_S = 0.05  # after a block: wandb-core finishes its rows (their CPU counts, not the wait)
RNG = np.random.default_rng(0)
IN_RUN_BLOCK = 2  # reports per block in the in-run check
MIN_PAIRS = 8  # fewer pairs give no interval worth printing
Span = tuple[int, bool, float, float]  # (report, logged, wall s, cpu s): a report to the next


def wandb_core_pids() -> list[int]:
    """This process's wandb-core services (children named wandb-core)."""
    pids = []
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "wandb-core":
                    pids.append(int(pid))
            except OSError:
                continue
    return pids


def cpu_ns(pids: Sequence[int]) -> int:
    """CPU ns used so far by this process (all threads) and by `pids` (all their threads)."""
    total = time.process_time_ns()
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(stat.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total


def row_at(step: int) -> dict[str, Any]:
    """A trainer-shaped report (the keys `trainer.train` reports every log_every steps)."""
    return {
        "step": step,
        "tokens": step * 1024,
        "elapsed_s": step * 0.05,
        "train_loss": 3.0 - step * 1e-4,
        "lr": 1e-3,
        "grad_norm": 0.5,
        "step_time_s": 0.05,
        "tokens_per_s": 2e4,
        "memory_mb": 100.0,
    }


def bootstrap_ci(
    samples: Sequence[float], stat: Callable[[np.ndarray], float] = np.median, n: int = 2000
) -> tuple[float, float]:
    """The 95% bootstrap interval of `stat` over `samples`."""
    data = np.asarray(samples, dtype=float)
    draws = [stat(data[RNG.integers(0, len(data), len(data))]) for _ in range(n)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def iqr(samples: Sequence[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 25)), float(np.percentile(samples, 75))


def row_costs(blocks: int, rows: int, workdir: Path) -> dict[str, dict[str, list[float]]]:
    """Per mode, per clock: the cost of one row in each pair of neighbouring blocks, in s."""
    loggers = {
        mode: ExperimentLogger("bench-logging", f"rows-{mode}", mode=mode, dir=workdir)
        for mode in ("disabled", "offline")
    }
    pids = wandb_core_pids()
    step = 0

    def block(log: Callable[[dict[str, Any]], None] | None) -> tuple[float, float]:
        nonlocal step
        began, began_cpu = time.perf_counter(), cpu_ns(pids)
        for _ in range(rows):
            row = row_at(step)
            if log is not None:
                log(row)
            step += 1
        wall = time.perf_counter() - began
        time.sleep(PAUSE_S)
        return wall, (cpu_ns(pids) - began_cpu) / 1e9

    costs: dict[str, dict[str, list[float]]] = {m: {"wall": [], "cpu": []} for m in loggers}
    block(loggers["offline"].log_metrics)  # warm-up
    order = ["off", "disabled", "offline"]
    for i in range(blocks):
        turn = order[i % 3 :] + order[: i % 3]  # each kind first, second and last in turn
        measured = {
            kind: block(loggers[kind].log_metrics if kind in loggers else None) for kind in turn
        }
        for mode in loggers:
            for j, clock in enumerate(("wall", "cpu")):
                costs[mode][clock].append((measured[mode][j] - measured["off"][j]) / rows)
    for logger in loggers.values():
        logger.finish()
    return costs


def run_overrides(steps: int, log_every: int) -> dict[str, Any]:
    """A training run with no evaluation before its last step and no sample at the end."""
    overrides = {"train.max_steps": steps, "train.log_every": log_every}
    return overrides | {
        "train.eval_every": steps,
        "train.eval_batches": 1,
        "train.sample_tokens": 0,
    }


def step_times(steps: int, log_every: int) -> list[float]:
    """Seconds per optimizer step of the `tiny` preset, one sample per log_every interval."""
    times: list[float] = []

    def report(metrics: dict[str, Any]) -> None:
        if "step_time_s" in metrics and metrics["step"] < steps:  # the last one has the eval
            times.append(metrics["step_time_s"])

    train(load_config("tiny", run_overrides(steps, log_every)), report=report)
    return times[2:]  # the first intervals warm up


def in_run_check(steps: int, log_every: int, block: int, workdir: Path) -> dict[str, list[float]]:
    """One training run, the logger on and off in ABBA blocks of `block` reports; per pair
    of blocks, (on - off) / off for the CPU and the wall time of the intervals."""
    config = load_config("tiny", run_overrides(steps, log_every))
    logger = ExperimentLogger("bench-logging", "in-run", config=config, mode="offline", dir=workdir)
    pids = wandb_core_pids()
    spans: list[Span] = []
    last: list[float] = []
    reports = 0

    def on_at(n: int) -> bool:
        return (n // block) % 4 in (0, 3)  # ABBA: on off off on on off off on ...

    def report(metrics: dict[str, Any]) -> None:
        nonlocal reports
        now, now_cpu = time.perf_counter(), cpu_ns(pids)
        if last:
            n = reports - 1  # the span holds report n's logging, then log_every steps
            spans.append((n, on_at(n), now - last[0], (now_cpu - last[1]) / 1e9))
        if on_at(reports):
            logger.log_metrics(metrics)
        reports += 1
        last[:] = [now, now_cpu]

    train(config, report=report)
    logger.finish()
    return pair_blocks(spans[:-1], block)  # the last span holds the final evaluation


def pair_blocks(spans: Sequence[Span], block: int) -> dict[str, list[float]]:
    """Per pair of neighbouring blocks (2m, 2m+1) of `block` spans, one logged and one not,
    (on - off) / off of their summed wall and CPU time; blocks 0 and 1 (warm-up) and any
    incomplete or unmixed pair are left out."""
    by_block: dict[int, list[Span]] = {}
    for span in spans:
        by_block.setdefault(span[0] // block, []).append(span)
    diffs: dict[str, list[float]] = {"wall": [], "cpu": []}
    for first in range(2, max(by_block, default=0), 2):
        a, b = by_block.get(first, []), by_block.get(first + 1, [])
        if len(a) != block or len(b) != block or a[0][1] == b[0][1]:
            continue
        on, off = (a, b) if a[0][1] else (b, a)
        for j, clock in ((2, "wall"), (3, "cpu")):
            on_s, off_s = sum(s[j] for s in on), sum(s[j] for s in off)
            diffs[clock].append((on_s - off_s) / off_s)
    return diffs


def share(
    row_s: Sequence[float], step_s: Sequence[float], log_every: int
) -> tuple[float, float, float]:
    """Row cost / (log_every x step time): the point estimate and a bootstrap 95% CI."""
    point = statistics.median(row_s) / (log_every * statistics.median(step_s))
    rows, steps = np.asarray(row_s), np.asarray(step_s)
    draws = [
        np.median(rows[RNG.integers(0, len(rows), len(rows))])
        / (log_every * np.median(steps[RNG.integers(0, len(steps), len(steps))]))
        for _ in range(2000)
    ]
    return point, float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=30, help="blocks of each kind (part 1)")
    parser.add_argument("--rows", type=int, default=200, help="log calls per block (part 1)")
    parser.add_argument("--steps", type=int, default=800, help="steps per training run")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: stable on a busy machine)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.blocks, args.rows, args.steps = 6, 50, 200
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    began = time.perf_counter()
    log_every = load_config("tiny").train.log_every
    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    print(
        f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        f"(other work on the machine widens every interval below); torch threads {threads}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-logging-") as tmp:
        workdir = Path(tmp)
        train(load_config("tiny", {"train.max_steps": 5}))  # warm-up: data cache, kernels
        costs = row_costs(args.blocks, args.rows, workdir)
        print(f"\nper logged row ({args.blocks} pairs of blocks of {args.rows} rows, interleaved):")
        for mode, clocks in costs.items():
            for clock, values in clocks.items():
                us = [v * 1e6 for v in values]
                lo, hi = bootstrap_ci(us)
                q1, q3 = iqr(us)
                print(
                    f"  {mode:8s} {clock:4s} {statistics.median(us):7.1f} us  "
                    f"(IQR {q1:.1f}..{q3:.1f}, 95% CI of the median {lo:.1f}..{hi:.1f})"
                )
        steps = step_times(args.steps, log_every)
        lo, hi = bootstrap_ci(steps)
        q1, q3 = iqr(steps)
        print(
            f"\nper optimizer step (tiny, logging off, {len(steps)} intervals of {log_every}): "
            f"{statistics.median(steps) * 1e3:.1f} ms (IQR {q1 * 1e3:.1f}..{q3 * 1e3:.1f}, "
            f"95% CI {lo * 1e3:.1f}..{hi * 1e3:.1f})"
        )
        diffs = in_run_check(args.steps, log_every, IN_RUN_BLOCK, workdir)
    pairs = len(diffs["cpu"])
    print(f"\nin one run, logger on/off in ABBA blocks of {IN_RUN_BLOCK} reports ({pairs} pairs):")
    for clock, values in diffs.items():
        if pairs < MIN_PAIRS:
            print(f"  {clock:4s} too few pairs for an interval (run more --steps)")
            continue
        lo, hi = bootstrap_ci(values)
        resolves = "yes" if hi - lo < TARGET else "no"
        print(
            f"  {clock:4s} cost {statistics.median(values):+.2%} "
            f"(95% CI {lo:+.2%}..{hi:+.2%}; resolves 2%: {resolves})"
        )
    print(f"({time.perf_counter() - began:.0f} s)")
    # The row's CPU (this process + wandb-core) against the step's wall time: its cost where
    # the logger's work cannot overlap the step's (busy cores); wall against wall: on free ones.
    for every in (log_every, 1):
        shipped = "shipped " if every == log_every else ""
        for clock, note in (("cpu", "row CPU / step wall"), ("wall", "row wall / step wall")):
            point, lo, hi = share(costs["offline"][clock], steps, every)
            verdict = "within" if hi < TARGET else "OVER" if lo > TARGET else "not resolved vs"
            print(
                f"logging cost at {shipped}log_every={every}: {point:.3%} of step time "
                f"(95% CI {lo:.3%}..{hi:.3%}; wandb offline, {note}): {verdict} the "
                f"{TARGET:.0%} target"
            )


if __name__ == "__main__":
    main()
