"""Interop with W&B and Optuna tools: the W&B command macros, `orchestrate agent` (up to the
W&B server, which is faked), `orchestrate export-wandb`, `orchestrate dashboard`, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import TESTS, write_spec

from orchestrator import store
from orchestrator.cli import main
from orchestrator.interop.export import WANDB_KEYS
from orchestrator.plan.expand import expand
from orchestrator.programs import script_run
from orchestrator.spec import load_spec
from orchestrator.tracking.wandb_records import read_run_history

# ---------------------------------------------------------------- macros and printed metrics


def test_stop_sends_sigterm_then_sigkill_after_the_grace_period(tmp_path):
    stubborn = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    stubborn += "print('ready', flush=True)\ntime.sleep(60)\n"
    process = subprocess.Popen(
        [sys.executable, "-c", stubborn], stdout=subprocess.PIPE, start_new_session=True
    )
    process.stdout.readline()  # its SIGTERM handler is in place
    started = time.monotonic()
    assert script_run.stop_process(process, grace=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 5


# ---------------------------------------------------------------- orchestrate agent


@pytest.fixture(scope="module")
def ray_with_fake_wandb_server(tmp_path_factory):
    """A real local Ray whose workers talk to a fake W&B server (tests/fake_wandb_server.py)."""
    import ray

    log = tmp_path_factory.mktemp("fake_server") / "calls.jsonl"
    env = {
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)]),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "FAKE_WANDB_LOG": str(log),
        "FAKE_WANDB_ARGS": json.dumps({"lr": 0.5, "epochs": 3}),
        "WANDB_MODE": "offline",
    }
    runtime_env = {"worker_process_setup_hook": "fake_wandb_server.install", "env_vars": env}
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env=runtime_env,
    )
    yield log
    ray.shutdown()


def test_agents_run_as_ray_tasks_up_to_the_wandb_server(
    ray_with_fake_wandb_server, tmp_path, monkeypatch
):
    """The W&B server is faked (see fake_wandb_server.py); wandb's agent is real and runs
    the sweep's real train.py, offline."""
    log = ray_with_fake_wandb_server
    monkeypatch.chdir(tmp_path)
    shutil.copy(TESTS / "wandb_style_train.py", tmp_path / "train.py")
    code = main(["agent", "team/proj/abc123", "--workers", "2", "--count", "1", "--runs", "runs"])
    assert code == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    sweeps = [c for c in calls if c["call"] == "sweep"]
    assert len({c["pid"] for c in sweeps}) == 2  # two agents, in two Ray workers
    for call in sweeps:
        assert (call["sweep_id"], call["entity"], call["project"]) == ("abc123", "team", "proj")
        assert call["resources"] == {"CPU": 1.0}
        assert call["cwd"] == str(tmp_path)
        assert call["wandb_dir"] == str(tmp_path / "runs" / "agent-abc123")
    runs = [c["run_id"] for c in calls if c["call"] == "run"]
    assert len(runs) == 2
    for run_id in runs:  # each agent ran its run to the end
        run = read_run_history(tmp_path / "runs" / "agent-abc123" / "wandb", run_id)
        assert run.config["lr"] == 0.5 and run.config["epochs"] == 3
        assert len(run.history) == 3 and run.exit_code == 0


def test_ctrl_c_stops_the_agents_after_their_runs(
    ray_with_fake_wandb_server, tmp_path, monkeypatch
):
    log = ray_with_fake_wandb_server
    (tmp_path / "train.py").write_text(
        (TESTS / "wandb_style_train.py").read_text().replace("default=0.0", "default=0.5")
    )
    monkeypatch.chdir(tmp_path)
    started = log.stat().st_size if log.exists() else 0

    def interrupt_when_running() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and not list(tmp_path.glob("runs/*/wandb/*run-*")):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    # Ctrl-C as a terminal delivers it (a test runner may have started us with it ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=interrupt_when_running, daemon=True).start()
    began = time.monotonic()
    try:
        code = main(["agent", "team/proj/abc123", "--workers", "1", "--runs", "runs"])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130
    assert time.monotonic() - began < 60
    calls = [json.loads(line) for line in log.read_text()[started:].splitlines()]
    (run_id,) = [c["run_id"] for c in calls if c["call"] == "run"]
    run = read_run_history(tmp_path / "runs" / "agent-abc123" / "wandb", run_id)
    assert run.exit_code == 0 and len(run.history) == 3  # the run went on to its end


def test_agents_run_the_shared_trainer(ray_with_fake_wandb_server, tmp_path, monkeypatch):
    """`--trainer tiny`: each agent's run is `python -m trainer --preset tiny`, which reads
    the server's params from wandb.config (the W&B server is faked, as above)."""
    monkeypatch.chdir(tmp_path)
    small = {"model.d_model": 16, "model.num_layers": 1, "model.num_heads": 2}
    small |= {"model.context_length": 16, "model.vocab_size": 300, "data.num_stories": 150}
    small |= {"train.max_steps": 2, "train.eval_every": 2, "train.eval_batches": 1}
    small |= {"train.batch_size": 2, "train.sample_tokens": 4}
    small |= {"data.cache_dir": str(tmp_path / "cache"), "optimizer.lr": 0.004}
    (tmp_path / "fake_args.json").write_text(json.dumps(small))
    assert main(["agent", "team/proj/tr41n", "--trainer", "tiny", "--count", "1"]) == 0
    (path,) = (tmp_path / "runs" / "agent-tr41n" / "wandb").glob("*run-*/*.wandb")
    run = read_run_history(path.parent.parent, path.stem.removeprefix("run-"))
    assert run.config["optimizer.lr"] == 0.004 and run.config["optimizer"]["lr"] == 0.004
    assert run.summary["outcome"] == "completed" and "val_loss" in run.summary


def test_bad_sweep_path_is_one_line_and_exit_2(capsys):
    assert main(["agent", "abc123", "--workers", "2"]) == 2  # (before any Ray starts)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "sweep 'abc123': expected ENTITY/PROJECT/SWEEP_ID (as `wandb sweep` prints it, "
        "e.g. my-team/my-project/abc123de)"
    ]


# ---------------------------------------------------------------- export-wandb


EXTENDED = """
    name: ext
    method: grid
    metric: {name: val_loss, goal: minimize}
    base: tiny
    seeds: [0, 1]
    resources: {cpus: 2}
    max_retries: 1
    wandb: {project: proj, tags: [a]}
    trainer: {train.max_steps: 20}
    parameters:
      optimizer:
        parameters:
          lr: {values: [0.001, 0.01]}
"""


def test_export_wandb_prints_a_wandb_config_and_warns_for_each_extension(tmp_path, capsys):
    spec_path = write_spec(tmp_path, EXTENDED)
    assert main(["export-wandb", str(spec_path)]) == 0
    out, err = capsys.readouterr()
    config = yaml.safe_load(out)
    assert set(config) <= {*WANDB_KEYS, "parameters", "project", "entity"}
    assert config["command"] == [
        *["${env}", "${interpreter}", "-m", "trainer", "--preset", "tiny", "${args}"]
    ]
    assert config["project"] == "proj"
    assert config["parameters"]["optimizer"] == {"parameters": {"lr": {"values": [0.001, 0.01]}}}
    assert config["parameters"]["train.max_steps"] == {"value": 20}  # trainer: values
    assert config["parameters"]["train.seed"] == {"values": [0, 1]}  # seeds: a grid axis
    warned = [line.split(": ", 2)[2].split(":")[0] for line in err.strip().splitlines()]
    assert warned == ["resources", "max_retries", "wandb.tags"]


def test_exported_config_plans_the_same_runs(tmp_path, capsys):
    """W&B's sweep config is a subset of ours: loaded back, the export plans the same runs."""
    shipped = TESTS.parent / "sweeps" / "lr.yaml"
    assert main(["export-wandb", str(shipped)]) == 0
    exported = tmp_path / "lr.yaml"
    exported.write_text(capsys.readouterr().out)
    original = [t.overrides for t in expand(load_spec(shipped))]
    assert [t.overrides for t in expand(load_spec(exported))] == original


def test_export_of_several_metrics_keeps_them_and_names_the_first_as_metric(tmp_path, capsys):
    """W&B's own engine optimises `metric`; its Optuna and Ax engines take `metrics`. The
    export gives both, says so, and loads back as the same study's objectives."""
    shipped = TESTS.parent / "sweeps" / "pareto.yaml"
    assert main(["export-wandb", str(shipped)]) == 0
    out, err = capsys.readouterr()
    config = yaml.safe_load(out)
    first, second = {"name": "val_loss", "goal": "minimize"}, {"name": "tokens_per_s"}
    assert config["metric"] == first
    assert config["metrics"] == [first, second | {"goal": "maximize"}]
    assert "metrics: W&B's own engine optimises metric (val_loss (minimize)) alone" in err
    exported = tmp_path / "pareto.yaml"
    exported.write_text(out)
    spec = load_spec(exported)
    assert [m.label for m in spec.objectives] == [m.label for m in load_spec(shipped).objectives]
    assert [t.overrides for t in expand(spec)] == [t.overrides for t in expand(load_spec(shipped))]


def test_export_refuses_what_wandb_cannot_run(tmp_path, capsys):
    ablation = write_spec(
        tmp_path,
        "name: abl\nmethod: ablation\nbaseline: {model.norm: rmsnorm}\n"
        "ablations: {no_norm: {model.norm: none}}\n",
    )
    assert main(["export-wandb", str(ablation)]) == 2
    assert "method: ablation has no W&B equivalent" in capsys.readouterr().err


# ---------------------------------------------------------------- bad input


def test_missing_program_file_and_unknown_macro_exit_2(tmp_path, capsys):
    missing = write_spec(
        tmp_path,
        "name: missing\nmethod: grid\nprogram: trian.py\nparameters: {lr: {values: [0.1]}}\n",
    )
    assert main(["run", str(missing), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{missing}: program: no such file: {tmp_path / 'trian.py'}"]

    macro = write_spec(
        tmp_path,
        "name: macro\nmethod: grid\nprogram: train.py\ncommand: [python, '${program}', "
        "'${args_jsonfile}']\nparameters: {lr: {values: [0.1]}}\n",
        name="macro.yaml",
    )
    assert main(["plan", str(macro)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    hint = "did you mean '${args_json_file}'?"
    assert err == [f"{macro}:4: command: unknown macro ${{args_jsonfile}}; {hint}"]


# ---------------------------------------------------------------- dashboard


def test_dashboard_serves_the_sweep_study(tmp_path):
    run_dir = tmp_path / "runs" / "dash"
    storage = store.open_storage(None, run_dir)
    study = optuna.create_study(storage=storage, study_name="dash")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    label = store.storage_label(None, run_dir)
    info = store.SweepFile(
        name="dash", storage=label, study_name="dash", run_dir=str(run_dir), spec_copy=""
    )
    store.write_sweep_file(run_dir, info)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "orchestrator.cli", "dashboard", str(run_dir)]
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        study_id = storage.get_study_id_from_name("dash")
        base = f"http://127.0.0.1:{port}"
        page = _fetch(f"{base}/dashboard/studies/{study_id}", server)
        assert "<html" in page.lower()
        detail = json.loads(_fetch(f"{base}/api/studies/{study_id}", server))
        assert detail["name"] == "dash" and len(detail["trials"]) == 3
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0  # a clean stop


def _fetch(url: str, server: subprocess.Popen, timeout: float = 30.0) -> str:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                raise AssertionError(server.communicate()[1].decode()) from None
            time.sleep(0.2)
