"""A sweep stays in its folder: paths inside it are recorded relative to it, so a copy (or a
moved sweep) is a sweep of its own that never reads or writes the original."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

from conftest import trial_starts, trials_of, wait_for, write_spec
from optuna.trial import TrialState

from orchestrator import store

SPEC = """
    name: kept
    method: grid
    program: sweep_programs:steps
    metric: {name: loss, goal: minimize}
    max_concurrent: 1
    parameters:
      x: {values: [1.0, 2.0, 3.0]}
      steps: {value: 40}
      step_seconds: {value: 0.05}
"""


def orchestrate(*args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "orchestrator.cli", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()[-3000:]
    return out.decode()


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_copied_sweep_is_its_own_sweep(tmp_path):
    spec = write_spec(tmp_path, SPEC)
    original = tmp_path / "runs" / "kept"
    first = orchestrate("run", str(spec), "--runs", str(tmp_path / "runs"), "--num-cpus", "2")

    def one_done_one_midway() -> bool:
        trials = trials_of(original)
        done = any(t.state == TrialState.COMPLETE for t in trials)
        return done and any(
            len(t.intermediate_values) >= 5 for t in trials if not t.state.is_finished()
        )

    wait_for(one_done_one_midway)
    first.send_signal(signal.SIGTERM)  # the midway trial checkpoints: interrupted
    first.communicate(timeout=120)

    # What the sweep recorded inside its folder is relative to it.
    info = json.loads((original / store.SWEEP_FILE).read_text())
    assert info["storage"] == store.JOURNAL_NAME and info["spec_copy"] == "spec.yaml"
    raw = store.load_study(store.read_sweep_file(original)).get_trials()
    assert {t.user_attrs["checkpoint_dir"] for t in raw if "checkpoint_dir" in t.user_attrs} <= {
        f"trials/{n:04d}" for n in range(3)
    }

    copy = tmp_path / "elsewhere" / "kept-copy"
    shutil.copytree(original, copy)
    before = snapshot(original)
    interrupted = [t.number for t in trials_of(original) if t.state == TrialState.RUNNING]
    assert interrupted

    status = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "status", str(copy), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    (overview,) = json.loads(status.stdout)
    assert overview["run_dir"] == str(copy.resolve())

    finish(orchestrate("resume", str(copy), "--num-cpus", "2"))
    assert snapshot(original) == before  # not a byte of the original changed
    copied = trials_of(copy)
    assert len(copied) == 3 and all(t.state == TrialState.COMPLETE for t in copied)
    for trial in copied:
        assert trial.user_attrs["checkpoint_dir"].startswith(str(copy))
        if trial.number in interrupted:  # went on from the copy's own checkpoint
            assert trial_starts(trial)[-1]["resumed_from_step"] >= 5
    assert [t.state for t in trials_of(original) if t.number in interrupted] == [
        TrialState.RUNNING
    ] * len(interrupted)

    # The spec inside a second copy, run as a spec, runs that copy too.
    second = tmp_path / "third" / "kept"
    shutil.copytree(original, second)
    finish(orchestrate("run", str(second / "spec.yaml"), "--num-cpus", "2"))
    assert all(t.state == TrialState.COMPLETE for t in trials_of(second))
    assert snapshot(original) == before


def test_a_changed_fixed_key_is_refused_on_a_rerun(tmp_path):
    """The plan's points are compared on every start; so is what makes every trial alike
    (the program, its fixed keys, the metric), or a rerun would mix 20- and 40-step trials."""
    from orchestrator.errors import UserError
    from orchestrator.plan.expand import expand
    from orchestrator.run import setup
    from orchestrator.spec import load_spec

    path = write_spec(
        tmp_path,
        """
        name: fixed
        method: grid
        metric: {name: val_loss, goal: minimize}
        trainer: {train.max_steps: 20}
        parameters:
          optimizer.lr: {values: [0.001, 0.01]}
        """,
    )
    run_dir = tmp_path / "runs" / "fixed"

    def start(*overrides: str) -> None:
        spec = load_spec(path, list(overrides))
        setup.open_study(spec, run_dir, expand(spec), list(overrides), None)

    start()
    start("max_concurrent=1", "max_retries=0")  # how it runs may change
    try:
        start("trainer.train.max_steps=40")
    except UserError as error:
        (line,) = error.lines
        assert "trainer.train.max_steps: 20 -> 40: changed since" in line, line
        assert "new `name:`" in line
    else:
        raise AssertionError("a changed fixed key was accepted")
    assert store.read_sweep_file(run_dir).trial_config["trainer.train.max_steps"] == 20


def cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "orchestrator.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_status_and_ls_while_a_sweep_starts_and_once_its_sweep_file_is_lost(tmp_path):
    from orchestrator.run import setup

    runs = tmp_path / "runs"
    lock = setup.acquire_lock(runs / "early")  # a controller in its first seconds
    try:
        status = cli("status", str(runs / "early"))
        assert status.returncode == 0, status.stderr
        assert f"early  starting: controller pid {os.getpid()} is setting it up" in status.stdout
        assert "starting: controller pid" in cli("ls", "--runs", str(runs)).stdout
    finally:
        setup.release_lock(lock)

    spec = write_spec(tmp_path, SPEC.replace("steps: {value: 40}", "steps: {value: 2}"))
    finish(orchestrate("run", str(spec), "--runs", str(runs), "--num-cpus", "2"))
    (runs / "kept" / store.SWEEP_FILE).unlink()
    listing = cli("ls", "--runs", str(runs))
    assert "kept  sweep.json is missing" in listing.stdout and "no trial is lost" in listing.stdout
    assert cli("status", str(runs / "kept")).returncode == 0
    finish(orchestrate("run", str(spec), "--runs", str(runs), "--num-cpus", "2"))  # rewrites it
    assert "kept  grid  3/3" in cli("ls", "--runs", str(runs)).stdout
