"""Checkpoints that follow the trial, for real: an S3-compatible server (moto's standalone
server) on 127.0.0.1, and a 2-node Ray cluster whose nodes each write checkpoints under a
local root of their own. The node running a trial dies; its root is deleted with it; the
trial resumes on the other node from what the dead one last uploaded."""

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
from pathlib import Path

import pytest
import ray
from conftest import ROOT, trials_of, wait_for, wait_until_dead, write_spec
from optuna.trial import TrialState
from ray.cluster_utils import Cluster

from orchestrator import store
from orchestrator.errors import UserError
from orchestrator.programs.checkpoint_store import CheckpointStore
from orchestrator.programs.checkpoint_sync import LOCAL_ROOT_ENV
from orchestrator.run.controller import Controller
from orchestrator.service.checkpoints import pull_checkpoints
from orchestrator.spec import load_spec

pytestmark = pytest.mark.cluster
AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """moto's S3 server in its own process group; a bucket `ckpt`; the URI of a prefix."""
    for key, value in AWS.items():
        monkeypatch.setenv(key, value)  # the controller's, and so every raylet's and worker's
    port = free_port()
    log = open(tmp_path / "moto.log", "wb")  # noqa: SIM115 (closed at teardown)
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"endpoint_override=127.0.0.1:{port}&scheme=http"
    try:
        wait_for(lambda: _listening(port), timeout=60)
        import pyarrow.fs as pafs

        fs, _ = pafs.FileSystem.from_uri(f"s3://ckpt?{endpoint}&allow_bucket_creation=true")
        fs.create_dir("ckpt")
        yield f"s3://ckpt/sweeps?{endpoint}"
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        log.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def two_nodes(roots: tuple[Path, Path]) -> tuple[Cluster, object]:
    """A head and a worker node, one CPU each, each with its own local checkpoint root."""
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "env_vars": {LOCAL_ROOT_ENV: str(roots[0])},
        },
    )
    worker = cluster.add_node(num_cpus=1, env_vars={LOCAL_ROOT_ENV: str(roots[1])})
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    return cluster, worker


SPEC = """
    name: follow
    method: grid
    program: sweep_programs:steps
    metric: {name: loss, goal: minimize}
    max_retries: 2
    checkpoints: {uri: "URI", keep: 2}
    parameters:
      x: {values: [1, 2]}
      steps: {value: 60}
      step_seconds: {value: 0.1}
    """


def test_a_trial_whose_node_dies_resumes_on_the_other_node_from_the_store(s3, tmp_path, capfd):
    head_root, worker_root = tmp_path / "head-disk", tmp_path / "worker-disk"
    spec = write_spec(tmp_path / "spec", SPEC.replace("URI", s3))
    runs = tmp_path / "runs"
    cluster, worker = two_nodes((head_root, worker_root))
    seen: dict = {}  # what the killer saw as the node died

    def kill_the_worker_node_midway() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not seen:
            for trial in trials_of(runs / "follow"):
                place = trial.user_attrs.get(store.attrs.CHECKPOINT_STORE)
                on_worker = trial.user_attrs.get("node_id") == worker.node_id
                midway = max(trial.intermediate_values, default=0) >= 8
                if not (place and on_worker and midway and trial.state == TrialState.RUNNING):
                    continue
                pid = int((worker_root / place["key"] / "pid").read_text())
                cluster.remove_node(worker, allow_graceful=False)
                os.kill(pid, signal.SIGKILL)  # the whole machine goes: the trial's process too
                wait_until_dead(pid)
                shutil.rmtree(worker_root)  # and its disk with it: nobody reads it now
                trial_store = CheckpointStore(place["uri"])
                pointer = trial_store.pointer()
                got = tmp_path / "at-death"
                trial_store.download(got)
                seen.update(
                    number=trial.number,
                    key=place["key"],
                    version=pointer.version,
                    writer=pointer.writer,
                    step=json.loads((got / "state.json").read_text())["step"],
                    survivor_had_it=(head_root / place["key"]).exists(),
                    reported=max(trial.intermediate_values),
                )
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_worker_node_midway, daemon=True)
    killer.start()
    try:
        Controller(load_spec(spec), runs_root=runs).run()
        killer.join()
    finally:
        ray.shutdown()
        cluster.shutdown()

    trials = trials_of(runs / "follow")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert seen and 0 < seen["step"] <= seen["reported"] and not seen["survivor_had_it"]
    (retried,) = [t for t in trials if t.user_attrs.get("retries")]
    assert retried.number == seen["number"] and retried.user_attrs["node_id"] != worker.node_id
    assert not (head_root / seen["key"]).exists()  # uploaded when it ended, then removed

    # The retry started from the last step the dead node uploaded, read from the store.
    assert retried.user_attrs["final_metrics"]["resumed_from_step"] == seen["step"]
    for trial in trials:  # only the last K versions of each trial are kept
        trial_store = CheckpointStore(trial.user_attrs[store.attrs.CHECKPOINT_STORE]["uri"])
        pointer = trial_store.pointer()
        assert trial_store.versions() == pointer.versions and len(pointer.versions) == 2
        if trial.number == seen["number"]:  # the survivor went on uploading after the death
            assert pointer.version > seen["version"] + 1 and pointer.writer != seen["writer"]

    # Checkpoints were never written into the controller's run directory; pull brings them.
    trial_dir = Path(retried.user_attrs["checkpoint_dir"])
    assert not (trial_dir / "state.json").exists()
    assert sorted(pull_checkpoints(runs / "follow")) == [0, 1]
    assert json.loads((trial_dir / "state.json").read_text()) == {"step": 60}
    (start,) = [json.loads(line) for line in (trial_dir / "starts.jsonl").read_text().splitlines()]
    assert start["resumed_from_step"] == seen["step"]  # the retry's own record of its start
    assert "Ray has 2 nodes" not in capfd.readouterr().out  # the store was set: no warning


def test_two_nodes_without_a_store_warn_that_checkpoints_stay_on_each(tmp_path, capfd):
    spec = write_spec(
        tmp_path / "spec",
        """
        name: local
        method: grid
        program: sweep_programs:noop
        parameters:
          x: {values: [1]}
        """,
    )
    cluster, _ = two_nodes((tmp_path / "a", tmp_path / "b"))
    try:
        Controller(load_spec(spec), runs_root=tmp_path / "runs").run()
    finally:
        ray.shutdown()
        cluster.shutdown()
    out = capfd.readouterr().out
    assert f"warning: {spec}: Ray has 2 nodes and the spec sets no checkpoints:" in out


def test_a_missing_bucket_is_one_line_and_exit_2_before_anything_runs(s3, tmp_path):
    spec = write_spec(tmp_path, SPEC.replace("URI", s3.replace("s3://ckpt/", "s3://nobucket/")))
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", str(spec), "--runs", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{spec}: checkpoints: cannot write to s3://nobucket/sweeps")
    assert "bucket does not exist" in line
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing was written
    with pytest.raises(UserError):
        Controller(load_spec(spec), runs_root=tmp_path / "runs").run()


def test_a_scripts_checkpoint_dir_is_node_local_and_kept_in_the_store(tmp_path, monkeypatch):
    """A W&B-style script (tests/wandb_style_train.py writes into ORCHESTRATE_CHECKPOINT_DIR)
    with a file:// store: what it wrote is in the store, not in the controller's run dir."""
    monkeypatch.setenv(LOCAL_ROOT_ENV, str(tmp_path / "node"))  # before Ray: workers get it
    spec = write_spec(
        tmp_path / "spec",
        f"""
        name: script
        method: grid
        program: train.py
        metric: {{name: loss, goal: minimize}}
        checkpoints: file://{tmp_path}/store
        parameters:
          lr: {{values: [0.5]}}
          epochs: {{value: 3}}
        """,
    )
    shutil.copy(ROOT / "tests" / "wandb_style_train.py", spec.parent / "train.py")
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        Controller(load_spec(spec), runs_root=tmp_path / "runs").run()
    finally:
        ray.shutdown()
    (trial,) = trials_of(tmp_path / "runs" / "script")
    assert trial.state == TrialState.COMPLETE
    place = trial.user_attrs[store.attrs.CHECKPOINT_STORE]
    pointer = CheckpointStore(place["uri"]).pointer()
    assert {"seen.json", "starts.jsonl"} <= set(pointer.files)
    assert (tmp_path / "node" / "script").is_dir()  # it ran there; uploaded, then removed
    assert not (tmp_path / "node" / place["key"]).exists()
    assert not (Path(trial.user_attrs["checkpoint_dir"]) / "seen.json").exists()


TRAINER = """
    name: trainer-store
    method: grid
    metric: {name: val_loss, goal: minimize}
    checkpoints: {uri: "URI", keep: 2}
    parameters:
      optimizer.lr: {values: [0.01]}
    trainer:
      train.max_steps: 40
      train.eval_every: 10
      train.log_every: 5
      train.checkpoint_every: 10
"""


def test_the_trainer_resumes_on_a_node_that_never_saw_the_trial(tmp_path, monkeypatch):
    """Stopped midway on node A (Ray started with A's local root), A's disk deleted, resumed on
    node B: the trainer goes on from the checkpoint it gets from the store, and its history
    (the JSONL mirror of its wandb run) shows the second attempt starting there."""
    spec = write_spec(tmp_path / "spec", TRAINER.replace("URI", f"file://{tmp_path}/store"))
    runs = tmp_path / "runs"

    monkeypatch.setenv(LOCAL_ROOT_ENV, str(tmp_path / "node-a"))
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        controller = Controller(load_spec(spec), runs_root=runs)

        def stop_midway() -> None:
            wait_for(lambda: any(t.intermediate_values for t in trials_of(runs / "trainer-store")))
            controller.request_stop()

        threading.Thread(target=stop_midway, daemon=True).start()
        outcome = controller.run()
    finally:
        ray.shutdown()
    assert outcome.interrupted
    (trial,) = trials_of(runs / "trainer-store")
    place = trial.user_attrs[store.attrs.CHECKPOINT_STORE]
    stopped = CheckpointStore(place["uri"]).pointer()
    assert set(stopped.files) == {"checkpoint.pt"}  # the trainer's own temporary files left out
    shutil.rmtree(tmp_path / "node-a")

    monkeypatch.setenv(LOCAL_ROOT_ENV, str(tmp_path / "node-b"))
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        Controller(load_spec(spec), runs_root=runs).run()
    finally:
        ray.shutdown()
    (trial,) = trials_of(runs / "trainer-store")
    assert trial.state == TrialState.COMPLETE
    resumed = trial.user_attrs["final_metrics"]["resumed_from_step"]
    assert 10 <= resumed < 40
    assert (tmp_path / "node-b" / "trainer-store").is_dir()  # where it went on
    assert not (Path(trial.user_attrs["checkpoint_dir"]) / "checkpoint.pt").exists()
    log = runs / "trainer-store" / "logs" / f"{trial.user_attrs['wandb_run_id']}.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    inits = [i for i, e in enumerate(entries) if e.get("kind") == "init"]
    assert len(inits) == 2
    after = [e["step"] for e in entries[inits[1] :] if e.get("step") is not None]
    assert after[0] == resumed + 5  # the second attempt's first row: the step after its resume
    pointer = CheckpointStore(place["uri"]).pointer()
    assert len(pointer.versions) == 2 and pointer.version > stopped.version
