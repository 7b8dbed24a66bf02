"""Service mode against a real Ray cluster: a head node started here (`ray start --head` on
loopback with its dashboard), sweeps submitted and left running, status from other processes,
a cancel, a controller killed with SIGKILL and restarted by Ray, and a pull."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import trials_of, wait_for, write_spec
from optuna.trial import TrialState
from ray.job_submission import JobSubmissionClient
from ray_heads import free_port, head_arguments, head_process

from orchestrator.cli import main
from orchestrator.tracking.wandb_records import read_run_history

# Two sweeps at once on a 2-CPU head, one trial at a time each: they share the CPUs.
ALPHA = """
    name: alpha
    method: grid
    program: sweep_programs:steps
    metric: {name: loss, goal: minimize}
    max_concurrent: 1
    parameters:
      x: {values: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}
      steps: {value: 100}
      step_seconds: {value: 0.05}
"""
BETA = """
    name: beta
    method: grid
    program: sweep_programs:steps
    metric: {name: loss, goal: minimize}
    max_concurrent: 1
    parameters:
      x: {values: [1.0, 2.0, 3.0]}
      steps: {value: 2000}
      step_seconds: {value: 0.05}
"""


@pytest.fixture(scope="module")
def head_tmpdir():
    """The RAY_TMPDIR under which the head keeps its files: a `ray.init()` given it finds the
    head as it would find a `ray start` head under /tmp/ray; no other one does."""
    base = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: Ray's socket paths
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_head(head_tmpdir):
    """A Ray head node of our own: its own temp dir, free ports, no token auth; stopped by
    killing its process group, never with `ray stop`."""
    temp_dir = os.path.join(head_tmpdir, "ray")
    dashboard = free_port()
    command = [
        str(Path(sys.executable).parent / "ray"),
        *head_arguments(temp_dir, dashboard, free_port()),
    ]
    env = dict(
        os.environ,
        RAY_AUTH_MODE="disabled",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    env.pop("RAY_ADDRESS", None)
    os.makedirs(temp_dir)
    url = f"http://127.0.0.1:{dashboard}"
    with head_process(command, env, Path(temp_dir, "head.log"), url):
        yield url


def orchestrate(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """The CLI in a process of its own, as a user on another machine runs it."""
    command = [sys.executable, "-m", "orchestrator.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def starts_of(trial) -> list[dict]:
    if "checkpoint_dir" not in trial.user_attrs:  # still waiting
        return []
    path = Path(trial.user_attrs["checkpoint_dir"]) / "starts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_bad_input_exits_2_with_one_line(ray_head, tmp_path, capsys):
    spec = write_spec(tmp_path / "spec", ALPHA)
    unstartable = write_spec(tmp_path / "spec", ALPHA.replace("alpha", "gamma"), "gamma.yaml")
    cases = [
        ["status", "alpha", "--address", f"http://127.0.0.1:{free_port()}"],
        ["status", "no-such-sweep", "--address", ray_head],
        ["logs", "no-such-sweep", "--address", ray_head],
        ["submit", str(spec), "--address", ray_head, "--runs", "relative/runs"],
        ["cancel", "alpha"],  # no address
        # passes every check here, then cannot start on the head: exit 2, the head's reason
        ["submit", str(unstartable), "--address", ray_head, "--runs", "/proc/no/runs"],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], (argv, err)
    assert "cannot reach" in main_error(capsys, cases[0])
    assert "no sweep of that name" in main_error(capsys, cases[1])
    error = main_error(capsys, cases[-1])
    assert "sweep gamma failed to start" in error and "/proc/no" in error, error


def main_error(capsys, argv: list[str]) -> str:
    main(argv)
    return capsys.readouterr().err


def test_a_local_run_starts_its_own_ray_beside_a_ray_start_head(ray_head, head_tmpdir, tmp_path):
    """Where a `ray start` head runs, a bare `ray.init()` joins it (and refuses num_cpus); a
    sweep without --address starts a Ray of its own all the same."""
    wait_for(Path(head_tmpdir, "ray", "ray_current_cluster").exists)  # where ray.init() looks
    spec = write_spec(
        tmp_path,
        ALPHA.replace("alpha", "beside").replace("steps: {value: 100}", "steps: {value: 3}"),
    )
    env = dict(os.environ, RAY_TMPDIR=head_tmpdir)
    env.pop("RAY_ADDRESS", None)
    command = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        str(spec),
        "--runs",
        str(tmp_path / "runs"),
    ]
    done = subprocess.run(
        command + ["--num-cpus", "1"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    trials = trials_of(tmp_path / "runs" / "beside")
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)


def test_submit_detach_status_cancel_restart_pull(ray_head, tmp_path):
    cluster_runs = tmp_path / "cluster_runs"  # the head node's runs root (this machine)
    specs = [
        write_spec(tmp_path / "spec", text, f"{name}.yaml")
        for name, text in (("alpha", ALPHA), ("beta", BETA))
    ]
    for spec, name in zip(specs, ("alpha", "beta"), strict=True):
        submitted = orchestrate(
            "submit", str(spec), "--address", ray_head, "--runs", str(cluster_runs)
        )
        assert submitted.returncode == 0, submitted.stderr
        assert submitted.stdout.split() == [name]  # the sweep id, and the client is gone
    again = main(["submit", str(specs[0]), "--address", ray_head, "--runs", str(cluster_runs)])
    assert again == 2  # the same sweep twice at once

    alpha, beta = cluster_runs / "alpha", cluster_runs / "beta"
    wait_for(lambda: any(len(t.intermediate_values) >= 5 for t in trials_of(beta)))
    wait_for(lambda: any(t.state == TrialState.COMPLETE for t in trials_of(alpha)))

    # From a second process: where alpha stands, read on the cluster.
    status = orchestrate("status", "alpha", "--address", ray_head, "--json")
    assert status.returncode == 0, status.stderr
    (overview,) = json.loads(status.stdout)
    pid = int((alpha / "controller.lock").read_text())
    assert overview["job"]["status"] == "RUNNING" and overview["controller_pid"] == pid
    assert overview["counts"]["complete"] >= 1 and overview["total"] == 6

    # Kill alpha's controller mid-trial; Ray restarts it and it resumes from the store.
    reached: dict[int, int] = {}  # plan index -> the step its trial had reported when killed

    def alpha_midway() -> bool:
        for trial in trials_of(alpha):
            step = max(trial.intermediate_values, default=0)
            if trial.state == TrialState.RUNNING and 5 <= step <= 60:  # wide: a slow poll
                reached[trial.user_attrs["plan_index"]] = step
        return bool(reached)

    wait_for(alpha_midway)
    os.kill(pid, signal.SIGKILL)

    # Cancel beta: its running trial checkpoints and is recorded interrupted.
    cancelled = orchestrate("cancel", "beta", "--address", ray_head)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "STOPPED" in cancelled.stdout
    beta_trials = trials_of(beta)
    assert all(
        t.state != TrialState.RUNNING or t.user_attrs.get("status_detail") == "interrupted"
        for t in beta_trials
    )
    started = [t for t in beta_trials if starts_of(t)]
    assert started and all(starts_of(t)[-1]["end_step"] < 2000 for t in started)  # stopped early
    assert not any(t.state == TrialState.COMPLETE for t in beta_trials)

    jobs = JobSubmissionClient(ray_head)
    (alpha_job,) = [j for j in jobs.list_jobs() if (j.metadata or {}).get("sweep") == "alpha"]
    wait_for(lambda: jobs.get_job_status(alpha_job.submission_id).is_terminal())
    assert jobs.get_job_status(alpha_job.submission_id).name == "SUCCEEDED"
    trials = trials_of(alpha)
    assert sorted(t.user_attrs["plan_index"] for t in trials) == [0, 1, 2, 3, 4, 5]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    new_pid = int((alpha / "controller.lock").read_text())
    assert new_pid != pid
    for trial in trials:  # no step ran twice; the killed controller's trial went on
        starts = starts_of(trial)
        assert starts[-1]["end_step"] == 100
        for before, after in zip(starts, starts[1:], strict=False):
            assert after["resumed_from_step"] >= before["end_step"]
        assert starts[-1]["resumed_from_step"] >= reached.get(trial.user_attrs["plan_index"], 0)
    # The two sweeps shared the CPUs: each ran one trial at a time, and they overlapped.
    spans = {
        name: sorted(
            (s["began"], s["ended"]) for t in trials_of(cluster_runs / name) for s in starts_of(t)
        )
        for name in ("alpha", "beta")
    }
    for intervals in spans.values():
        assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:], strict=False))
    assert any(a[0] < b[1] and b[0] < a[1] for a in spans["alpha"] for b in spans["beta"])

    logs = orchestrate("logs", "alpha", "--follow", "--address", ray_head)  # ends with the job
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.count("controller pid") == 2 and "sweep alpha ended" in logs.stdout
    logs = orchestrate("logs", "beta", "--address", ray_head)
    assert "stop requested" in logs.stdout and "interrupted" in logs.stdout

    listing = orchestrate("ls", "--address", ray_head)
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()}
    assert "6/6  complete=6" in lines["alpha"] and "SUCCEEDED" in lines["alpha"]
    assert "interrupted=" in lines["beta"] and "STOPPED" in lines["beta"]

    local = tmp_path / "local_runs"
    pulled = orchestrate("pull", "alpha", "--address", ray_head, "--runs", str(local))
    assert pulled.returncode == 0, pulled.stderr
    status = orchestrate("status", str(local / "alpha"), "--json")
    assert status.returncode == 0, status.stderr
    (overview,) = json.loads(status.stdout)
    assert overview["counts"] == {"complete": 6} and overview["controller_pid"] is None
    best = overview["best"]
    assert Path(best["wandb_dir"]).is_relative_to(local)
    run = read_run_history(best["wandb_dir"], best["wandb_run"])
    assert run.metric("loss")[-1] == pytest.approx(best["value"])
    assert json.loads((local / "alpha" / "results.json").read_text())[0]["trial"] == best["trial"]
    pulled_report = local / "alpha" / "report" / "report.md"  # written on the cluster
    assert pulled_report.exists() and list(pulled_report.parent.glob("*.png"))
    pulled_report.unlink()
    report = orchestrate("report", str(local / "alpha"))
    assert report.returncode == 0, report.stderr
    assert pulled_report.exists()


STORED = """
    name: stored
    method: grid
    program: sweep_programs:steps
    metric: {name: loss, goal: minimize}
    checkpoints: file://STORE
    parameters:
      x: {values: [1.0, 2.0]}
      steps: {value: 5}
      step_seconds: {value: 0.01}
"""


def test_pull_checkpoints_takes_them_from_the_checkpoints_store(ray_head, tmp_path):
    """With `checkpoints:`, no checkpoint lies in the head's run directory (each trial wrote
    it on its node and uploaded it): `pull --checkpoints` downloads them from the store."""
    spec = write_spec(tmp_path / "spec", STORED.replace("STORE", str(tmp_path / "store")))
    cluster_runs = tmp_path / "cluster_runs"
    submitted = orchestrate("submit", str(spec), "--address", ray_head, "--runs", str(cluster_runs))
    assert submitted.returncode == 0, submitted.stderr
    jobs = JobSubmissionClient(ray_head)
    (job,) = [j for j in jobs.list_jobs() if (j.metadata or {}).get("sweep") == "stored"]
    wait_for(lambda: jobs.get_job_status(job.submission_id).is_terminal())
    trials = trials_of(cluster_runs / "stored")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert not any((Path(t.user_attrs["checkpoint_dir"]) / "state.json").exists() for t in trials)

    local = tmp_path / "local_runs"
    args = ("pull", "stored", "--address", ray_head, "--runs", str(local), "--checkpoints")
    pulled = orchestrate(*args)
    assert pulled.returncode == 0, pulled.stderr
    for trial in trials:
        trial_dir = local / "stored" / "trials" / f"{trial.number:04d}"
        assert json.loads((trial_dir / "state.json").read_text()) == {"step": 5}
        assert (trial_dir / "output.log").exists()  # the head's files are there as well
