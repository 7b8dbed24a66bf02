"""The controller on a real local Ray (2 CPUs) with a real journal-file Optuna store."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import trial_starts as starts
from conftest import trials_of, write_spec
from optuna.trial import TrialState

from orchestrator import load_sweep
from orchestrator.results import summary
from orchestrator.run.controller import Controller
from orchestrator.spec import load_spec
from orchestrator.tracking.wandb_records import read_run_history


def run_sweep(spec_path: Path, runs: Path, overrides: list[str] | None = None) -> Controller:
    controller = Controller(load_spec(spec_path, overrides or []), runs_root=runs)
    controller.outcome = controller.run()
    return controller


GRID = """
    name: grid
    method: grid
    program: sweep_programs:steps
    metric: {name: loss, goal: minimize}
    parameters:
      x: {values: [3.0, 1.0, 2.0, 4.0]}
      steps: {value: 4}
"""


def test_grid_runs_every_point_once_and_records_results(local_ray, tmp_path):
    controller = run_sweep(write_spec(tmp_path, GRID), tmp_path / "runs")
    run_dir = tmp_path / "runs" / "grid"
    trials = trials_of(run_dir)
    assert sorted(t.user_attrs["plan_index"] for t in trials) == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for trial in trials:
        assert trial.value == pytest.approx(trial.params["x"] + 0.25)
        assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
        for key in ("checkpoint_dir", "node", "node_id", "started_at", "ended_at"):
            assert trial.user_attrs.get(key), key
    assert controller.outcome.counts == {"complete": 4}

    # One wandb run per trial, read back from its offline transaction log.
    best = next(t for t in trials if t.params["x"] == 1.0)
    run = read_run_history(best.user_attrs["wandb_dir"], best.user_attrs["wandb_run_id"])
    assert run.name == f"grid-{best.number}-x=1"
    assert (run.group, run.job_type) == ("grid", "trial")
    assert set(run.tags) == {"grid", "x=1"}
    assert run.config["sweep"]["trial"] == best.number
    assert run.config["params"] == {"x": 1.0, "steps": 4}
    assert [row["step"] for row in run.history] == [1, 2, 3, 4]
    assert run.summary["state"] == "complete"
    assert run.summary["final/loss"] == pytest.approx(1.25)

    sweep = summary.summarize(run_dir)
    assert [r.params["x"] for r in sweep.trials] == [1.0, 2.0, 3.0, 4.0]  # best first
    assert sweep.best.params["x"] == 1.0 and sweep.best.value == pytest.approx(1.25)
    assert json.loads((run_dir / "results.json").read_text())[0]["value"] == pytest.approx(1.25)
    header = (run_dir / "results.csv").read_text().splitlines()[0]
    assert "param.x" in header and "state" in header

    # Running the same spec again finds everything done and runs nothing.
    run_sweep(write_spec(tmp_path, GRID), tmp_path / "runs")
    assert len(trials_of(run_dir)) == 4


def test_raising_trial_fails_with_traceback_and_sweep_continues(local_ray, tmp_path):
    spec = write_spec(
        tmp_path,
        """
        name: raising
        method: grid
        program: sweep_programs:steps
        metric: {name: loss, goal: minimize}
        parameters:
          raise: {values: [true, false]}
          steps: {value: 2}
        """,
    )
    run_sweep(spec, tmp_path / "runs")
    by_flag = {t.params["raise"]: t for t in trials_of(tmp_path / "runs" / "raising")}
    failed, ok = by_flag[True], by_flag[False]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["failure_reason"] == "ValueError: boom at step 2"
    assert "raise ValueError" in failed.user_attrs["traceback"]
    assert len(starts(failed)) == 1  # an exception in the program is not retried
    assert ok.state == TrialState.COMPLETE


def _last_steps(trial) -> tuple[int, int, int]:
    """A trial's last step in the store, in its program's checkpoint, and in its wandb run."""
    state = json.loads(Path(trial.user_attrs["checkpoint_dir"], "state.json").read_text())
    run = read_run_history(trial.user_attrs["wandb_dir"], trial.user_attrs["wandb_run_id"])
    return max(trial.intermediate_values), state["step"], run.history[-1]["step"]


def test_a_pruned_trial_stops_at_the_step_the_pruner_decided_on(local_ray, tmp_path):
    # Steps take no time: a trial told by Ray's cancel ran on for many steps after the
    # decision (recorded PRUNED at step 2, its checkpoint and wandb run at step 30 or more).
    spec = write_spec(
        tmp_path,
        """
        name: pruning
        method: grid
        program: sweep_programs:steps
        metric: {name: loss, goal: minimize}
        max_concurrent: 1
        optuna: {pruner: sha, pruner_options: {min_resource: 1, reduction_factor: 2}}
        parameters:
          x: {values: [1.0, 50.0]}
          steps: {value: 400}
          step_seconds: {value: 0.0}
        """,
    )
    run_sweep(spec, tmp_path / "runs")
    by_x = {t.params["x"]: t for t in trials_of(tmp_path / "runs" / "pruning")}
    assert by_x[1.0].state == TrialState.COMPLETE
    pruned = by_x[50.0]
    assert pruned.state == TrialState.PRUNED
    store_step, checkpoint_step, wandb_step = _last_steps(pruned)
    assert store_step < 400
    assert checkpoint_step == store_step  # the task stopped at the decision, not after it
    assert wandb_step == store_step  # and its wandb run ends there too, as pruned
    run = read_run_history(pruned.user_attrs["wandb_dir"], pruned.user_attrs["wandb_run_id"])
    assert run.summary["state"] == "pruned"
    assert load_sweep(tmp_path / "runs" / "pruning").trial(pruned.number).last_step == store_step


def test_a_trial_the_pruner_stops_at_its_last_step_is_complete(local_ray, tmp_path):
    spec = write_spec(
        tmp_path,
        """
        name: threshold
        method: grid
        program: sweep_programs:steps
        metric: {name: loss, goal: minimize}
        optuna: {pruner: threshold, pruner_options: {upper: 10.0}}
        parameters:
          x: {value: 50.0}
          steps: {values: [1, 5]}
          step_seconds: {value: 0.0}
        """,
    )
    run_sweep(spec, tmp_path / "runs")
    by_steps = {t.params["steps"]: t for t in trials_of(tmp_path / "runs" / "threshold")}
    assert by_steps[5].state == TrialState.PRUNED  # its first loss, 50.5, is over the bound
    assert _last_steps(by_steps[5]) == (1, 1, 1)
    assert by_steps[1].state == TrialState.COMPLETE  # the same verdict at its last step
    assert by_steps[1].value == pytest.approx(51.0)


def _kill_when(run_dir: Path, min_step: int, sig: int, target: str = "worker") -> threading.Thread:
    """Send `sig` to the first trial's worker (or to this process) once it reached min_step."""

    def watch() -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            for state in run_dir.glob("trials/*/state.json"):
                try:
                    step = json.loads(state.read_text())["step"]
                except (ValueError, OSError):
                    continue
                if step >= min_step:
                    pid = int((state.parent / "pid").read_text())
                    os.kill(pid if target == "worker" else os.getpid(), sig)
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_killed_worker_is_retried_and_resumes_from_checkpoint(local_ray, tmp_path):
    spec = write_spec(
        tmp_path,
        """
        name: killed
        method: grid
        program: sweep_programs:steps
        metric: {name: loss, goal: minimize}
        max_retries: 2
        parameters:
          x: {value: 1.0}
          steps: {value: 30}
          step_seconds: {value: 0.05}
        """,
    )
    killer = _kill_when(tmp_path / "runs" / "killed", 5, signal.SIGKILL)
    run_sweep(spec, tmp_path / "runs")
    killer.join()
    (trial,) = trials_of(tmp_path / "runs" / "killed")
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["retries"] == 1
    (resumed,) = starts(trial)  # the killed start never finished, so it logged nothing
    assert resumed["resumed_from_step"] >= 5
    assert trial.user_attrs["final_metrics"]["resumed_from_step"] >= 5
    # The retried trial continued its run: one run id, whose JSONL mirror holds every step
    # once, and so does its wandb history (what the killed process had not flushed to its
    # .wandb file died with it, and the retry replayed it from the JSONL).
    run_id = trial.user_attrs["wandb_run_id"]
    jsonl = Path(trial.user_attrs["wandb_dir"]).parent / "logs" / f"{run_id}.jsonl"
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    steps = [line["step"] for line in lines if line["kind"] == "metrics"]
    assert steps == sorted(set(steps)) and steps[0] == 1 and steps[-1] == 30  # each step once
    assert len(steps) >= 29  # at most the report of the step it was killed at is missing
    run = read_run_history(trial.user_attrs["wandb_dir"], run_id)
    assert [row["step"] for row in run.history] == steps
    assert run.summary["state"] == "complete"


def test_ctrl_c_checkpoints_running_trials_and_resume_finishes_them(local_ray, tmp_path):
    text = """
        name: interrupted
        method: grid
        program: sweep_programs:steps
        metric: {name: loss, goal: minimize}
        parameters:
          x: {values: [1.0, 2.0, 3.0]}
          steps: {value: 40}
          step_seconds: {value: 0.05}
    """
    run_dir = tmp_path / "runs" / "interrupted"
    spec = write_spec(tmp_path, text)
    stopper = _kill_when(run_dir, 5, signal.SIGINT, target="controller")
    controller = run_sweep(spec, tmp_path / "runs")
    stopper.join()
    assert controller.outcome.interrupted
    trials = [t for t in trials_of(run_dir) if t.state != TrialState.WAITING]
    # Two ran in the two slots and the third waited in Ray's queue (cancelled there).
    assert len(trials) == 3
    assert all(t.state == TrialState.RUNNING for t in trials)
    assert all(t.user_attrs["status_detail"] == "interrupted" for t in trials)
    assert [r["state"] for r in summary.overview(run_dir)["records"]] == ["interrupted"] * 3
    saved = {}  # the step each one checkpointed as it stopped
    for trial in trials:
        state = Path(trial.user_attrs["checkpoint_dir"], "state.json")
        if state.exists():
            saved[trial.number] = json.loads(state.read_text())["step"]
    assert saved  # (the second may still have been starting its worker process)
    assert max(saved.values()) >= 5

    run_sweep(spec, tmp_path / "runs")
    trials = trials_of(run_dir)
    assert sorted(t.user_attrs["plan_index"] for t in trials) == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for trial in trials:  # the interrupted ones went on from their checkpoints, no step twice
        runs = starts(trial)
        assert runs[-1]["end_step"] == 40
        assert runs[-1]["resumed_from_step"] >= saved.get(trial.number, 0)
        for before, after in zip(runs, runs[1:], strict=False):
            assert after["resumed_from_step"] == before["end_step"]
