import subprocess
import sys

from conftest import write_spec


def test_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "plan" in out.stdout


def test_unreachable_cluster_is_a_clear_error(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", "sweeps/lr.yaml"]
        + ["--address", "127.0.0.1:1", "--runs", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "cannot join the Ray cluster at 127.0.0.1:1: [Errno 111] Connection refused"
    ]


def test_resume_of_a_directory_that_is_no_sweep(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "resume", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"{tmp_path}: not a sweep directory (no sweep.json)"


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "method: random\nrun_cap: 2\nparameters:\n  optimizer.lr: {min: 0.1, max: 0.001}\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "plan", str(path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [
        f"{path}:4: parameters.optimizer.lr: min (0.1) must be less than max (0.001)"
    ]


def test_a_local_run_keeps_rays_banners_off_our_output(tmp_path):
    """With ~/.ray/auth_token present (Ray 2.60 then turns token auth on), Ray announces it
    on every start; our output stays ours."""
    spec = write_spec(
        tmp_path,
        """
        method: grid
        program: sweep_programs:noop
        metric: {name: loss}
        wandb: {mode: disabled}
        parameters: {x: {values: [1]}}
        """,
    )
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", str(spec), "--runs", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert "Token authentication" not in out.stdout + out.stderr
    assert "1 complete" in (tmp_path / "runs" / "sweep" / "report" / "report.md").read_text()
