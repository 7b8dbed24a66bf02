"""A cluster whose Python lacks orchestrate (the ordinary cluster image: Ray, torch, optuna,
wandb): `orchestrate submit` and `orchestrate SPEC --address` ship orchestrate, the trainer
and the spec's directory with Ray's runtime environment, probe every node first, and the
sweep runs to the end. A node that cannot import what a trial imports is one line naming the
node and the package, exit 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import trials_of, wait_for
from optuna.trial import TrialState
from ray.job_submission import JobSubmissionClient
from ray_heads import make_bare_python, orchestrate, ray_head

pytestmark = pytest.mark.cluster
NODE = r"node \d+\.\d+\.\d+\.\d+"  # the line names the node by its IP

# A `module:function` program kept in the spec's directory; it says where it was imported
# from, and where orchestrate was, so the test sees the shipped copies at work.
WHERE = """
import json
import os
import sys
from pathlib import Path

import helper


def run(config, report, checkpoint_dir):
    Path(checkpoint_dir, "where.json").write_text(json.dumps({
        "program": __file__,
        "helper": helper.__file__,
        "orchestrator": sys.modules["orchestrator"].__file__,
        "python": sys.executable,
    }))
    for step in range(1, 4):
        report({"step": step, "loss": helper.scale * float(config["x"]) / step})
    return {"loss": helper.scale * float(config["x"]) / 3}
"""
# A W&B script beside the spec, with a module of its own next to it.
SCRIPT = """
import argparse

import wandb

import helper

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
args = parser.parse_args()
run = wandb.init()
for step in range(1, 4):
    run.log({"loss": helper.scale * args.x / step})
run.finish()
"""
FUNCTION_SPEC = """
    name: {name}
    method: grid
    program: where:run
    metric: {{name: loss, goal: minimize}}
    parameters:
      x: {{values: [1.0, 2.0, 3.0]}}
"""
SCRIPT_SPEC = """
    name: {name}
    method: grid
    program: {script}
    metric: {{name: loss, goal: minimize}}
    parameters:
      x: {{values: [1.0, 2.0]}}
"""


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    """A Python with every dependency of orchestrate but not orchestrate."""
    base = tmp_path_factory.mktemp("bare")
    python = make_bare_python(base / "venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    elsewhere = {"cwd": base, "capture_output": True, "text": True, "env": env}
    missing = subprocess.run([str(python), "-c", "import orchestrator"], **elsewhere)
    assert "No module named 'orchestrator'" in missing.stderr
    deps = subprocess.run([str(python), "-c", "import ray, optuna, torch, wandb"], **elsewhere)
    assert deps.returncode == 0, deps.stderr
    return python


@pytest.fixture(scope="module")
def head(bare, tmp_path_factory):
    home = tmp_path_factory.mktemp("head_home")
    with ray_head(bare, home) as started:
        yield started


def spec_dir(tmp_path: Path, text: str, **files: str) -> Path:
    directory = tmp_path / "spec"
    directory.mkdir()
    (directory / "helper.py").write_text("scale = 1.0\n")
    for name, body in files.items():
        (directory / name).write_text(textwrap.dedent(body))
    (directory / "sweep.yaml").write_text(textwrap.dedent(text))
    return directory / "sweep.yaml"


def shipped(path: str, head) -> bool:
    """A path in Ray's unpacked runtime environments on the head (not our tree)."""
    return Path(path).is_relative_to(head.temp_dir) and "runtime_resources" in path


def test_submit_runs_a_sweep_on_a_head_without_orchestrate(head, tmp_path):
    spec = spec_dir(
        tmp_path,
        SCRIPT_SPEC.format(name="shipped-script", script="train.py"),
        **{"train.py": SCRIPT},
    )
    runs = tmp_path / "cluster_runs"
    submitted = orchestrate(
        "submit", str(spec), "--address", head.dashboard, "--runs", str(runs), cwd=tmp_path
    )
    assert submitted.returncode == 0, submitted.stderr
    jobs = JobSubmissionClient(head.dashboard)
    (job,) = [j for j in jobs.list_jobs() if (j.metadata or {}).get("sweep") == "shipped-script"]
    wait_for(lambda: jobs.get_job_status(job.submission_id).is_terminal(), timeout=300)
    log = jobs.get_job_logs(job.submission_id)
    assert jobs.get_job_status(job.submission_id).name == "SUCCEEDED", log[-3000:]
    assert "1 node(s) can import what a trial needs" in log
    status = orchestrate(
        "status", "shipped-script", "--address", head.dashboard, "--json", cwd=tmp_path
    )
    assert status.returncode == 0, status.stderr
    (overview,) = json.loads(status.stdout)
    assert overview["counts"] == {"complete": 2} and overview["job"]["status"] == "SUCCEEDED"
    trials = trials_of(runs / "shipped-script")
    assert sorted(t.value for t in trials) == pytest.approx([1 / 3, 2 / 3])


def test_address_runs_a_module_function_sweep_on_a_head_without_orchestrate(bare, head, tmp_path):
    spec = spec_dir(tmp_path, FUNCTION_SPEC.format(name="shipped-fn"), **{"where.py": WHERE})
    runs = tmp_path / "runs"
    done = orchestrate(str(spec), "--address", head.gcs, "--runs", str(runs), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "1 node(s) can import what a trial needs" in done.stdout
    trials = trials_of(runs / "shipped-fn")
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    for trial in trials:
        where = json.loads(Path(trial.user_attrs["checkpoint_dir"], "where.json").read_text())
        assert where["python"] == str(bare)  # the head's Python ran the trial
        # the program, its helper and orchestrate itself came with the job, not from here
        assert all(shipped(where[key], head) for key in ("program", "helper", "orchestrator"))


def test_a_node_without_a_package_the_script_imports_is_one_line(head, tmp_path):
    script = "import wandb\nimport nosuch_probe_pkg\nimport helper\n\nwandb.init()\n"
    spec = spec_dir(
        tmp_path, SCRIPT_SPEC.format(name="unimportable", script="train.py"), **{"train.py": script}
    )
    for argv in (
        ["submit", str(spec), "--address", head.dashboard, "--runs", str(tmp_path / "cr")],
        [str(spec), "--address", head.gcs, "--runs", str(tmp_path / "runs")],
    ):
        failed = orchestrate(*argv, cwd=tmp_path)
        assert failed.returncode == 2, (argv, failed.stdout[-2000:], failed.stderr[-2000:])
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in lines[0], lines
        assert re.search(
            NODE + r": cannot import nosuch_probe_pkg \(train.py imports it\)", lines[0]
        )
    assert not trials_of(tmp_path / "runs" / "unimportable")  # nothing was dispatched
