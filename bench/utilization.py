"""Slot utilisation: 16 trials of about 2 s each on 2 slots, after Ray is up.

Utilisation = busy slot-time / (wall time x slots), where busy slot-time is the time the
trials' programs ran (measured inside each trial) and wall time is the controller's run,
store set-up included; the workers are warmed by a 2-trial sweep first.
Target: at least 95%.

    .venv/bin/python -m bench.utilization [--trials 16 --seconds 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.common import start_ray, write_spec
from bench.overhead import QuietDisplay

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
    from orchestrator.run.controller import Controller
    from orchestrator.spec import load_spec

    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    slots = 2
    start_ray(num_cpus=slots)
    with tempfile.TemporaryDirectory() as tmp:
        # Warm the worker processes (their first trial imports wandb and the program), as a
        # sweep's trials after its first ones find them.
        warm = load_spec(write_spec(Path(tmp, "warm"), SPEC.format(values=[0, 1], step_seconds=0)))
        Controller(warm, runs_root=Path(tmp, "warm", "runs"), display=QuietDisplay()).run()
        text = SPEC.format(values=list(range(args.trials)), step_seconds=args.seconds / 10)
        spec = load_spec(write_spec(Path(tmp), text))
        controller = Controller(spec, runs_root=Path(tmp) / "runs", display=QuietDisplay())
        began = time.perf_counter()
        outcome = controller.run()
        wall = time.perf_counter() - began
        assert outcome.counts == {"complete": args.trials}, outcome.counts
        busy = 0.0
        for starts in Path(tmp, "runs", "utilization", "trials").glob("*/starts.jsonl"):
            for line in starts.read_text().splitlines():
                start = json.loads(line)
                busy += start["ended"] - start["began"]
    print(f"{args.trials} trials of ~{args.seconds:g} s on {slots} slots")
    print(f"  wall {wall:.2f} s, busy slot-time {busy:.2f} s, ideal wall {busy / slots:.2f} s")
    print(f"  utilisation: {100 * busy / (wall * slots):.1f}%  (target >= 95%)")


if __name__ == "__main__":
    main()
