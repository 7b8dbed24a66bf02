"""A user's own W&B sweep and training script, run by orchestrate offline as `wandb agent`
would run it (real Ray, real wandb offline, read back from its .wandb files); and the shared
trainer launched by the W&B agent's own code, with no W&B server involved."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TESTS, trials_of, write_spec
from optuna.trial import TrialState

from orchestrator.run.controller import Controller
from orchestrator.spec import load_spec
from orchestrator.tracking.wandb_records import find_run_files, read_run_history

# Read by ${envvar:...}; set before the module's Ray starts, so its workers inherit it.
os.environ["ORCHESTRATE_TEST_DATA"] = "/data/stories"


def write_sweep(directory: Path, text: str, script: str | None = None) -> Path:
    """A spec beside `train.py` (tests/wandb_style_train.py) or the given script text."""
    spec = write_spec(directory, text)
    if script is None:
        shutil.copy(TESTS / "wandb_style_train.py", directory / "train.py")
    else:
        (directory / "plain.py").write_text(script)
    return spec


def run_sweep(spec: Path, runs: Path):
    Controller(load_spec(spec), runs_root=runs).run()
    return trials_of(runs / load_spec(spec).name)


EVERY_MACRO = """
    name: hb
    method: grid
    program: train.py
    command:
      - ${env}
      - ${interpreter}
      - ${program}
      - ${args}
      - ${args_no_hyphens}
      - ${args_no_equals}
      - ${args_no_boolean_flags}
      - ${args_json}
      - ${args_json_file}
      - ${args_append_hydra}
      - ${args_override_hydra}
      - --data=${envvar:ORCHESTRATE_TEST_DATA}
    metric: {name: loss, goal: minimize}
    max_concurrent: 1
    early_terminate: {type: hyperband, max_iter: 9, s: 2, eta: 3}
    parameters:
      lr: {values: [0.5, 0.01]}
      epochs: {value: 12}
      nesterov: {value: false}
      epoch_seconds: {value: 0.25}
"""


def test_wandb_script_runs_unchanged_with_every_macro_and_hyperband_stops_the_bad_one(
    local_ray, tmp_path
):
    # (The sweep is named `hb`: Optuna's hyperband puts trials in brackets by a hash of the
    # study name and trial number, and with this name trial 1 shares trial 0's bracket.)
    trials = run_sweep(write_sweep(tmp_path, EVERY_MACRO), tmp_path / "runs")
    by_lr = {t.params["lr"]: t for t in trials}
    good, bad = by_lr[0.5], by_lr[0.01]
    trial_dir = Path(good.user_attrs["checkpoint_dir"])
    run_id = good.user_attrs["wandb_run_id"]

    # Every macro expanded as W&B's agent does, in the spec's directory.
    seen = json.loads((trial_dir / "seen.json").read_text())
    flags = ["lr=0.5", "epochs=12", "nesterov=False", "epoch_seconds=0.25"]
    json_file = trial_dir / f"config-{run_id}.json"
    assert seen["argv"] == [
        *[f"--{flag}" for flag in flags],  # ${args}
        *flags,  # ${args_no_hyphens}
        *["--lr", "0.5", "--epochs", "12", "--nesterov", "False", "--epoch_seconds", "0.25"],
        *["--lr=0.5", "--epochs=12", "--epoch_seconds=0.25"],  # ${args_no_boolean_flags}
        '{"lr": 0.5, "epochs": 12, "nesterov": false, "epoch_seconds": 0.25}',  # ${args_json}
        str(json_file),  # ${args_json_file}
        *[f"+{flag}" for flag in flags],
        *[f"++{flag}" for flag in flags],
        "--data=/data/stories",  # ${envvar:ORCHESTRATE_TEST_DATA}
    ]
    params = {"lr": 0.5, "epochs": 12, "nesterov": False, "epoch_seconds": 0.25}
    assert json.loads(json_file.read_text()) == params

    # Its own wandb.init() is the trial's run: the params in wandb.config (beside its own
    # argparse defaults), our run id, name, group and tags, offline under runs/hb/wandb.
    assert seen["config"] == params | {"optimizer": "sgd"}
    run = read_run_history(good.user_attrs["wandb_dir"], run_id)
    assert seen["run_id"] == run.run_id == run_id
    assert Path(seen["run_dir"]).is_relative_to(tmp_path / "runs" / "hb" / "wandb")
    assert run.config == seen["config"]
    assert (run.name, run.group, run.job_type) == ("hb-0-lr=0.5", "hb", "trial")
    assert set(run.tags) == {"hb", "grid", "lr=0.5"}

    # Its metrics came back: each logged loss at its _step, the summary's as the value.
    assert good.state == TrialState.COMPLETE
    assert good.intermediate_values == {row["_step"]: row["loss"] for row in run.history}
    assert len(good.intermediate_values) == 12
    assert good.value == run.summary["loss"] == pytest.approx(0.5**12)

    # Hyperband stopped the bad one early: SIGTERM, which the script caught and ended its run.
    assert bad.state == TrialState.PRUNED
    assert (Path(bad.user_attrs["checkpoint_dir"]) / "sigterm").exists()
    assert max(bad.intermediate_values) < 11
    bad_run = read_run_history(bad.user_attrs["wandb_dir"], bad.user_attrs["wandb_run_id"])
    assert bad_run.exit_code == 143


RETRIED = """
    name: retried
    method: grid
    program: train.py
    metric: {name: loss, goal: minimize}
    parameters:
      lr: {value: 0.5}
      epochs: {value: 8}
      epoch_seconds: {value: 0.25}
"""


def test_a_script_whose_worker_dies_is_retried_and_continues_its_run(local_ray, tmp_path):
    spec = write_sweep(tmp_path, RETRIED)
    starts_file = tmp_path / "runs" / "retried" / "trials" / "0000" / "starts.jsonl"

    def kill_the_worker() -> None:  # as a node or worker failure would
        deadline = time.time() + 120
        while time.time() < deadline and not starts_file.exists():
            time.sleep(0.05)
        os.kill(json.loads(starts_file.read_text().splitlines()[0])["ppid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_worker, daemon=True)
    killer.start()
    (trial,) = run_sweep(spec, tmp_path / "runs")
    killer.join()
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["retries"] == 1
    first, second = (json.loads(line) for line in starts_file.read_text().splitlines())
    assert first["run_id"] == second["run_id"] == trial.user_attrs["wandb_run_id"]
    with pytest.raises(ProcessLookupError):  # the first died with its worker
        os.kill(first["pid"], 0)
    run = read_run_history(trial.user_attrs["wandb_dir"], trial.user_attrs["wandb_run_id"])
    assert len(run.files) == 2 and run.exit_code == 0  # one run, continued in a second file
    assert trial.value == pytest.approx(0.5**8)


PLAIN_SCRIPT = """
import json, sys
args = json.load(open(sys.argv[1]))
for step in range(3):
    loss = args["x"] + 1 / (step + 1)
    if args["mode"] == "json":
        print(json.dumps({"step": step, "loss": loss}))
    else:
        print(f"step={step} loss={loss}")
    print("epoch done, saving")  # not a metric line
if args["mode"] == "crash":
    sys.exit("boom: out of memory")
"""

PLAIN = """
    name: plain
    method: grid
    program: plain.py
    command: ["${interpreter}", plain.py, "${args_json_file}"]
    metric: {name: loss, goal: minimize}
    parameters:
      mode: {values: [json, name=value, crash]}
      x: {value: 1.0}
"""


def test_script_without_wandb_reports_printed_json_or_name_value_lines(local_ray, tmp_path):
    trials = run_sweep(write_sweep(tmp_path, PLAIN, PLAIN_SCRIPT), tmp_path / "runs")
    by_mode = {t.params["mode"]: t for t in trials}
    for mode in ("json", "name=value"):
        trial = by_mode[mode]
        assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("failure_reason")
        assert trial.intermediate_values == pytest.approx({0: 2.0, 1: 1.5, 2: 1 + 1 / 3})
        assert trial.value == pytest.approx(1 + 1 / 3)
    crashed = by_mode["crash"]
    assert crashed.state == TrialState.FAIL
    assert crashed.user_attrs["failure_reason"] == "ScriptFailed: plain.py exited with code 1"
    assert "boom: out of memory" in crashed.user_attrs["traceback"]
    assert not find_run_files(tmp_path / "runs" / "plain" / "wandb")  # no wandb run of its own


def test_trainer_as_the_program_of_a_wandb_agent(tmp_path, monkeypatch):
    """`python -m trainer` launched by wandb's own Agent code (wandb_agent.Agent._command_run:
    param file, environment, command line), offline. Only the W&B server is left out: the
    command the server would send is given to the agent directly."""
    from wandb.wandb_agent import Agent

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(TESTS.parent))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep123")  # as `wandb agent` sets it
    for key in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):  # the agent sets these two
        monkeypatch.delenv(key, raising=False)
    agent = Agent(api=None, queue=queue.Queue(), sweep_id="sweep123")
    agent._sweep_command = ["${env}", "${interpreter}", "-m", "trainer", "--preset", "tiny"]
    agent._sweep_command += ["${args}", f"data.cache_dir={tmp_path / 'cache'}"]
    small = {
        "model.d_model": 16,
        "model.num_layers": 1,
        "model.num_heads": 2,
        "model.context_length": 16,
        "model.vocab_size": 300,
        "data.num_stories": 150,
        "train.max_steps": 4,
        "train.eval_every": 2,
        "train.eval_batches": 1,
        "train.batch_size": 2,
        "train.sample_tokens": 4,
    }
    args = {"optimizer": {"value": {"lr": 0.002}}}  # a nested W&B parameter
    args |= {key: {"value": value} for key, value in small.items()}
    agent._command_run({"type": "run", "run_id": "run00001", "program": "-", "args": args})
    process = agent._run_processes["run00001"]
    assert process.wait() == 0

    run = read_run_history(tmp_path / "wandb", "run00001")
    assert run.config["optimizer"] == {"lr": 0.002}  # as the agent gave it, not the preset's
    assert run.config["model.d_model"] == 16
    assert run.config["model"]["d_model"] == 16  # the resolved config: the sweep's value used
    assert run.config["train"]["max_steps"] == 4
    assert [row["step"] for row in run.history if "val_loss" in row] == [2, 4]
    assert run.summary["val_loss"] == run.history[-1]["val_loss"]
    assert run.summary["outcome"] == "completed" and run.exit_code == 0
