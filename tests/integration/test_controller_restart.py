"""`orchestrate` as a user runs it: a subprocess with its own local Ray, killed with SIGKILL
mid-sweep and started again; `status` and `ls` read the store while it runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from conftest import trial_starts, trials_of, wait_for, write_spec
from optuna.trial import TrialState

from orchestrator.run import reaper

SPEC = """
    name: restart
    method: grid
    program: sweep_programs:steps
    metric: {name: loss, goal: minimize}
    parameters:
      x: {values: [1.0, 2.0, 3.0, 4.0, 5.0]}
      steps: {value: 30}
      step_seconds: {value: 0.2}  # 6 s a trial: the sweep outlasts a `status` on a loaded machine
"""


def orchestrate(*args: str, **kwargs) -> subprocess.Popen:
    command = [sys.executable, "-m", "orchestrator.cli", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_sigkill_controller_then_rerun_continues_without_duplicates(tmp_path):
    sigkill_then_rerun(tmp_path, SPEC)


def sigkill_then_rerun(tmp_path, spec_text: str) -> None:
    """SIGKILL a sweep (SPEC, on any store) midway, run it again: every point completes once,
    each interrupted trial from its checkpoint, no step twice."""
    spec = write_spec(tmp_path, spec_text)
    runs = tmp_path / "runs"
    run_dir = runs / "restart"
    first = orchestrate("run", str(spec), "--runs", str(runs), "--num-cpus", "2")

    def study_trials():
        return trials_of(run_dir)

    def one_done_and_two_midway() -> bool:
        trials = study_trials()
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        midway = [
            t
            for t in trials
            if t.state == TrialState.RUNNING
            and t.intermediate_values
            and max(t.intermediate_values) >= 5
        ]
        return len(done) >= 1 and len(midway) >= 1

    wait_for(one_done_and_two_midway)

    # While it runs, another process reads where it stands.
    status = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "status", str(run_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    (overview,) = json.loads(status.stdout)
    assert overview["controller_pid"] == first.pid
    assert overview["counts"]["running"] >= 1 and overview["counts"]["complete"] >= 1

    def midway() -> dict[int, int]:  # the step each running trial has reported
        return {
            t.user_attrs["plan_index"]: max(t.intermediate_values, default=0)
            for t in study_trials()
            if t.state == TrialState.RUNNING
        }

    wait_for(lambda: max(midway().values(), default=0) >= 3)  # (status took a while)
    reached = midway()
    started = reaper.process_tree(first.pid)  # its Ray: gcs, raylet, agents, workers, watcher
    assert len(started) >= 5, started
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    # A trial sampled midway may still have finished before the kill: the store says which
    # were cut off.
    interrupted = {
        t.user_attrs["plan_index"] for t in study_trials() if t.state == TrialState.RUNNING
    }
    assert interrupted
    # Nothing it started outlives it (Ray's agents alone would wait a minute on the dead GCS).
    wait_for(
        lambda: not any(reaper.still_running(pid, start) for pid, start in started.items()),
        timeout=30,  # half that minute: room for a loaded machine
    )

    second = orchestrate("run", str(spec), "--runs", str(runs), "--num-cpus", "2")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode()[-2000:]

    trials = study_trials()
    assert max(reached.values()) >= 3  # some trial was midway when killed
    assert sorted(t.user_attrs["plan_index"] for t in trials) == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for trial in trials:
        starts = trial_starts(trial)
        # A start logs the steps it ran when it ends (a killed one logs nothing): no two
        # overlap, so no step ran twice, and each interrupted trial went on from its checkpoint.
        assert starts[-1]["end_step"] == 30
        for before, after in zip(starts, starts[1:], strict=False):
            assert after["resumed_from_step"] >= before["end_step"]
        if trial.user_attrs["plan_index"] in interrupted:
            assert starts[-1]["resumed_from_step"] >= reached.get(trial.user_attrs["plan_index"], 0)
    assert "restart" in out.decode()  # the summary table

    listing = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "ls", "--runs", str(runs)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0
    assert "restart  grid  5/5" in listing.stdout and "idle" in listing.stdout


def test_sigterm_is_a_graceful_stop(tmp_path):
    """What `timeout`, systemd and Slurm send: trials checkpoint and are recorded
    interrupted, exit 143; the same command then finishes them from their checkpoints."""
    spec = write_spec(tmp_path, SPEC.replace("restart", "termed"))
    runs = tmp_path / "runs"
    first = orchestrate("run", str(spec), "--runs", str(runs), "--num-cpus", "2")

    def midway() -> dict[int, int]:
        running = [t for t in trials_of(runs / "termed") if t.state == TrialState.RUNNING]
        return {t.number: max(t.intermediate_values, default=0) for t in running}

    wait_for(lambda: max(midway().values(), default=0) >= 3)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 143, err.decode()[-2000:]
    assert "interrupted: continue with" in out.decode()
    stopped = [t for t in trials_of(runs / "termed") if t.state == TrialState.RUNNING]
    assert stopped and all(t.user_attrs["status_detail"] == "interrupted" for t in stopped)
    saved = [trial_starts(t)[-1]["end_step"] for t in stopped if trial_starts(t)]
    assert saved and max(saved) >= 3  # they checkpointed as they stopped

    second = orchestrate("run", str(spec), "--runs", str(runs), "--num-cpus", "2")
    second.communicate(timeout=300)
    assert second.returncode == 0
    trials = trials_of(runs / "termed")
    assert len(trials) == 5 and all(t.state == TrialState.COMPLETE for t in trials)
