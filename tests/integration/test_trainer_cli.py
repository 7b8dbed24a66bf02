"""`python -m trainer` as a command: a short run, and bad input in one line with exit code 2."""

import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("trainer-cache"))


def test_cli_trains_and_rejects_a_bad_key_in_one_line(cache_dir):
    command = [sys.executable, "-m", "trainer", "--preset", "tiny"]
    small_run = ["--model.d_model=32", "model.num_layers=1", "--train.max_steps", "10"]
    small_run += [f"data.cache_dir={cache_dir}", "data.num_stories=600", "model.vocab_size=384"]
    ok = subprocess.run(command + small_run, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "step     10" in ok.stdout and "completed" in ok.stdout
    bad = subprocess.run(command + ["--optimizer.lrr=3e-4"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: unknown config key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"
    ]
    missing = subprocess.run(
        command + ["data.source=/no/such/file.txt"], capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "error: data.source: file not found: '/no/such/file.txt' (or use 'stories')"
    ]
