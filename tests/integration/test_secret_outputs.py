"""Secrets stay secret and output stays small: a sweep whose program prints its secrets
leaves none of them in any file of the sweep but its store, nor on the console; a program
that prints 200 MB has its result recorded at once and leaves about 2 MiB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import trials_of, write_spec

from orchestrator.programs.output import HEAD_BYTES, OUTPUT_FILE, TAIL_BYTES
from orchestrator.run.controller import Controller
from orchestrator.spec import load_spec
from orchestrator.store import attrs
from orchestrator.tracking.wandb_records import read_run_history

HF_TOKEN = "s3cr3t-value-123"
API_KEYS = ["key-aaaa-1111", "key-bbbb-2222"]
DB_URL = "postgres://me:pw-9f8e7d6c@db.internal/x"  # in a variable not named like a secret
WANDB_API_KEY = "0123456789abcdef" * 2 + "deadbeef"

SECRETIVE = f"""
    name: hush
    method: grid
    program: sweep_programs:secretive
    metric: {{name: loss, goal: minimize}}
    max_concurrent: 2
    parameters:
      hf_token: {{value: {HF_TOKEN}}}
      api_key: {{values: {json.dumps(API_KEYS)}}}
      db_url: {{value: "${{envvar:ORCHESTRATE_TEST_DB_URL}}"}}
"""
# What the sweep needs to resume (the values of its parameters), kept as they were given.
STORE_FILES = {"study.journal", "sweep.json", "spec.yaml"}


def test_no_secret_reaches_any_output(tmp_path):
    spec = write_spec(tmp_path, SECRETIVE)
    env = os.environ | {"WANDB_API_KEY": WANDB_API_KEY, "ORCHESTRATE_TEST_DB_URL": DB_URL}
    command = [sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--num-cpus", "2"]
    done = subprocess.run(
        [*command, "--runs", str(tmp_path / "runs")], env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    run_dir = tmp_path / "runs" / "hush"

    secrets = [HF_TOKEN, *API_KEYS, DB_URL, WANDB_API_KEY]
    files = [p for p in run_dir.rglob("*") if p.is_file() and p.name not in STORE_FILES]
    outputs = {str(p.relative_to(run_dir)): p.read_bytes() for p in files}
    outputs |= {"stdout": done.stdout, "stderr": done.stderr}
    for name in ("results.json", "results.csv", "report/report.md"):
        assert name in outputs
    assert any(name.endswith(".wandb") for name in outputs)
    assert any(name.startswith("logs/") for name in outputs)
    for name, data in outputs.items():
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} in {name}"

    # The secrets are shown redacted, a ${envvar:...} as written; the program got the values.
    results = json.loads((run_dir / "results.json").read_text())
    assert [r["state"] for r in results] == ["complete", "complete"]
    for record in results:
        assert record["params"]["hf_token"] == record["params"]["api_key"] == "<redacted>"
        assert record["params"]["db_url"] == "${envvar:ORCHESTRATE_TEST_DB_URL}"
        assert record["final_metrics"]["resolved"] == 1.0
        assert record["final_metrics"]["echo"] == "<redacted>"

    # What it printed is in its output.log, redacted, and in its wandb run's files too.
    for trial in trials_of(run_dir):
        log = (Path(trial.user_attrs[attrs.CHECKPOINT_DIR]) / OUTPUT_FILE).read_text()
        assert "hf_token = <redacted>" in log and "WANDB_API_KEY = <redacted>" in log
        assert "db_url = <redacted>" in log
        run = read_run_history(trial.user_attrs[attrs.WANDB_DIR], trial.user_attrs["wandb_run_id"])
        assert run.config["hf_token"] == "<redacted>"
        saved = list(
            Path(trial.user_attrs[attrs.WANDB_DIR]).glob(f"*{run.run_id}/files/output.log")
        )
        assert saved and saved[0].read_text() == log


NOISY = """
    name: noisy
    method: grid
    program: {program}
    metric: {{name: loss, goal: minimize}}
    parameters:
      megabytes: {{value: 200}}
"""
NOISY_SCRIPT = """
import pathlib, os, sys, time
block = ("noise " * 170 + "\\n") * 1024
for _ in range(200):
    sys.stdout.write(block)
print("loss=0.0")
pathlib.Path(os.environ["ORCHESTRATE_CHECKPOINT_DIR"], "returned_at").write_text(str(time.time()))
"""


def run_noisy(directory: Path, program: str) -> None:
    """A trial that prints 200 MiB: recorded within seconds of its return, ~2 MiB kept."""
    spec = write_spec(directory, NOISY.format(program=program))
    (directory / "noisy.py").write_text(NOISY_SCRIPT)
    began = time.time()
    Controller(load_spec(spec), runs_root=directory / "runs").run()
    (trial,) = trials_of(directory / "runs" / "noisy")
    assert trial.state.name == "COMPLETE", trial.user_attrs.get(attrs.FAILURE_REASON)
    trial_dir = Path(trial.user_attrs[attrs.CHECKPOINT_DIR])
    returned = float((trial_dir / "returned_at").read_text())
    assert trial.user_attrs[attrs.ENDED_AT] - returned < 5.0, time.time() - began
    log = trial_dir / OUTPUT_FILE
    assert log.stat().st_size <= HEAD_BYTES + TAIL_BYTES + 4096
    text = log.read_text()
    assert "bytes of output left out ...]" in text and text.rstrip().endswith(
        ("the end", "loss=0.0")
    )
    kept = sum(p.stat().st_size for p in (directory / "runs").rglob("*") if p.is_file())
    assert kept < 8 * 2**20, f"{kept} bytes under runs/"


def test_a_noisy_function_returns_at_once_and_leaves_its_output_capped(local_ray, tmp_path):
    run_noisy(tmp_path, "sweep_programs:noisy")


def test_a_noisy_script_returns_at_once_and_leaves_its_output_capped(local_ray, tmp_path):
    run_noisy(tmp_path, "noisy.py")
