import subprocess
import sys


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
