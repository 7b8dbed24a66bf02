"""Adaptive seeds end to end: `orchestrate` in its own process with its own local Ray adds
rounds of seeds until each ablation is decided, records them in the store, survives a
SIGKILL between rounds, dispatches seed-major, and reports verdicts, costs and compute."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from conftest import trials_of, wait_for, write_spec
from optuna.trial import TrialState

from orchestrator import store

# `clear` is decided at 2 seeds (Δ ≈ +1, tiny spread); `subtle`'s paired Δ is 0.1 x seed, so
# its t interval excludes 0 only from 5 seeds on: rounds add seeds 2, 3 and 4.
SPEC = """
    name: {name}
    method: ablation
    program: sweep_programs:seeded_loss
    metric: {{name: loss, goal: minimize}}
    seeds: {{min: 2, max: 6}}
    baseline: {{x: 1.0, step_seconds: {pause}}}
    ablations:
      clear: {{x: 2.0, seed_effect: 0.12}}
      subtle: {{seed_effect: 0.2}}
"""


def orchestrate(spec, runs) -> subprocess.Popen:
    command = [sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--runs", str(runs)]
    return subprocess.Popen(
        [*command, "--num-cpus", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def rounds_of(run_dir):
    info = store.read_sweep_file(run_dir)
    return store.load_study(info).user_attrs.get(store.attrs.SEED_ROUNDS, [])


def test_rounds_are_added_until_decided_and_shown_everywhere(tmp_path):
    spec = write_spec(tmp_path, SPEC.format(name="adaptive", pause=0))
    runs = tmp_path / "runs"
    run = orchestrate(spec, runs)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err.decode()[-3000:]
    text = out.decode()
    run_dir = runs / "adaptive"

    assert rounds_of(run_dir) == [
        {"seed": seed, "configs": ["baseline", "subtle"]} for seed in (2, 3, 4)
    ]
    trials = trials_of(run_dir)
    assert sorted(t.user_attrs["plan_index"] for t in trials) == list(range(12))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    seeds = {(t.params["ablation"], t.params["seed"]) for t in trials}
    assert ("subtle", 4) in seeds and ("clear", 2) not in seeds  # the decided one stops
    # Fair order: by trial number, seed 0 of every arm runs before any seed 1.
    first = sorted(trials, key=lambda t: t.number)[:6]
    assert [t.params["seed"] for t in first] == [0, 0, 0, 1, 1, 1]

    assert "adaptive seeds, round 1: seed 2 for baseline, subtle (undecided: subtle" in text
    assert "for 80% power" in text
    assert "adaptive seeds: every comparison decided with 5 seeds" in text
    assert "cost: " in text and "cpu-s" in text

    ablations = json.loads((run_dir / "ablations.json").read_text())
    assert [r["seed"] for r in ablations["adaptive_rounds"]] == [2, 3, 4]
    verdicts = {a["name"]: a["metrics"][0]["verdict"] for a in ablations["ablations"][1:]}
    assert verdicts == {"clear": "worse", "subtle": "worse"}
    assert ablations["compute"]["trials"] == 12 and ablations["compute"]["seconds"] > 0
    assert ablations["cost"]["label"].startswith("cost: ")
    results = json.loads((run_dir / "results.json").read_text())
    assert all(r["compute_s"] > 0 and r["compute_unit"] == "cpu-s" for r in results)
    report = (run_dir / "report" / "report.md").read_text()
    assert "Adaptive seeds (`seeds: {min, max}`) added: seed 2 for baseline, subtle" in report
    assert json.loads((run_dir / store.SWEEP_FILE).read_text())["total"] == 12


def test_sigkill_between_rounds_then_rerun_finishes_the_same_rounds(tmp_path):
    """Killed while round 2's trials run: the next controller adopts and finishes them before
    it decides on a round (deciding without them would add a round the sweep does not need),
    and queues nothing twice."""
    spec = write_spec(tmp_path, SPEC.format(name="killed", pause=0.7))
    runs = tmp_path / "runs"
    run_dir = runs / "killed"
    first = orchestrate(spec, runs)

    def second_round_running() -> bool:  # round 2 recorded and one of its trials midway
        if not trials_of(run_dir) or len(rounds_of(run_dir)) < 2:
            return False
        return any(
            t.user_attrs.get("plan_index", 0) >= 8
            and t.state == TrialState.RUNNING
            and t.intermediate_values
            for t in trials_of(run_dir)
        )

    wait_for(second_round_running, timeout=240)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)

    second = orchestrate(spec, runs)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode()[-3000:]
    trials = trials_of(run_dir)
    assert [r["seed"] for r in rounds_of(run_dir)] == [2, 3, 4]
    assert sorted(t.user_attrs["plan_index"] for t in trials) == list(range(12))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert "adaptive seeds: every comparison decided with 5 seeds" in out.decode()
