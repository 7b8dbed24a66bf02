"""Slot utilisation: 16 trials of about 2 s each on 2 slots, after Ray is up; and cold start.

Utilisation = busy slot-time / (wall time x slots), where busy slot-time is the time the
trials' programs ran (measured inside each trial) and wall time is the controller's run,
store set-up included. Cold: on fresh workers (target >= 97%); warm: after a 2-trial sweep
(target >= 95%). Cold start: from starting `orchestrate SPEC` in a new process to its first
trial running. The reference for cold is what Ray allows: the same sleeps as plain Ray tasks
on a fresh Ray (every task queued at once, so Ray alone sets the pace), measured the same way.

    .venv/bin/python -m bench.utilization [--trials 16 --seconds 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray

from bench.common import QuietDisplay, start_ray, write_spec

SPEC = """
    name: utilization
    method: grid
    program: sweep_programs:steps
    metric: {{name: loss, goal: minimize}}
    wandb: {{mode: disabled}}  # orchestration alone, as Ray Tune runs here without a logger
    parameters:
      x: {{values: {values}}}
      steps: {{value: 10}}
      step_seconds: {{value: {step_seconds}}}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    slots = 2
    with tempfile.TemporaryDirectory() as tmp:
        began = cold_start(Path(tmp, "cold_start"))
        start_ray(num_cpus=slots)
        floor = plain_ray(args.trials, args.seconds, slots)
        ray.shutdown()
        start_ray(num_cpus=slots)
        # Cold: fresh workers, as a sweep's first trials find them.
        cold = utilisation(Path(tmp, "cold"), args.trials, args.seconds, slots)
        # Warm: workers that have run trials before (a 2-trial sweep first).
        utilisation(Path(tmp, "warm"), 2, 0.0, slots)
        warm = utilisation(Path(tmp, "measured"), args.trials, args.seconds, slots)
    print(f"{args.trials} trials of ~{args.seconds:g} s on {slots} slots")
    for label, (wall, busy) in (("cold", cold), ("warm", warm)):
        print(
            f"  {label}: wall {wall:.2f} s, busy slot-time {busy:.2f} s, ideal {busy / slots:.2f} s"
        )
    print(
        f"cold start: {began:.2f} s  (`orchestrate SPEC` to its first trial running, Ray included)"
    )
    ray_floor = f"plain Ray tasks on fresh workers: {100 * floor[1] / (floor[0] * slots):.1f}%"
    print(
        f"cold utilisation: {100 * cold[1] / (cold[0] * slots):.1f}%  (target >= 97%; {ray_floor})"
    )
    print(f"utilisation: {100 * warm[1] / (warm[0] * slots):.1f}%  (warm, target >= 95%)")


def utilisation(workdir: Path, trials: int, seconds: float, slots: int) -> tuple[float, float]:
    """(wall seconds of the controller's run, busy slot-seconds of its trials' programs)."""
    from orchestrator.run.controller import Controller
    from orchestrator.spec import load_spec

    text = SPEC.format(values=list(range(trials)), step_seconds=seconds / 10)
    spec = load_spec(write_spec(workdir, text))
    controller = Controller(spec, runs_root=workdir / "runs", display=QuietDisplay())
    began = time.perf_counter()
    outcome = controller.run()
    wall = time.perf_counter() - began
    assert outcome.counts == {"complete": trials}, outcome.counts
    return wall, sum(end - start for start, end in _trial_spans(workdir))


def plain_ray(trials: int, seconds: float, slots: int) -> tuple[float, float]:
    """(wall seconds, busy slot-seconds) of `trials` Ray tasks that each sleep `seconds`, on
    workers that have run nothing yet: the least a sweep's first trials can cost on Ray."""

    @ray.remote(num_cpus=1)
    def sleep(seconds: float) -> tuple[float, float]:
        began = time.time()
        time.sleep(seconds)
        return began, time.time()

    began = time.perf_counter()
    spans = ray.get([sleep.remote(seconds) for _ in range(trials)])
    return time.perf_counter() - began, sum(end - start for start, end in spans)


def cold_start(workdir: Path) -> float:
    """Seconds from starting `orchestrate SPEC` (a new process: its imports, its own local
    Ray, the store) to its first trial's program running."""
    spec = write_spec(workdir, SPEC.format(values=[0, 1], step_seconds=0.01))
    command = [sys.executable, "-m", "orchestrator.cli", str(spec), "--runs", str(workdir / "runs")]
    began = time.time()
    subprocess.run(command, check=True, capture_output=True, cwd=workdir)
    return min(start for start, _ in _trial_spans(workdir)) - began


def _trial_spans(workdir: Path) -> list[tuple[float, float]]:
    spans = []
    for starts in workdir.glob("runs/utilization/trials/*/starts.jsonl"):
        for line in starts.read_text().splitlines():
            start = json.loads(line)
            spans.append((start["began"], start["ended"]))
    return spans


if __name__ == "__main__":
    main()
