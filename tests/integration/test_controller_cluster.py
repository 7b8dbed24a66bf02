"""Scheduling on real Ray clusters: declared GPUs (fractional), and two nodes with one dying."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import ray
from conftest import trial_starts as starts_of
from conftest import trials_of, write_spec
from optuna.trial import TrialState
from ray.cluster_utils import Cluster

from orchestrator import store
from orchestrator.run.controller import Controller
from orchestrator.spec import load_spec


def run(spec_path: Path, runs: Path) -> list:
    Controller(load_spec(spec_path), runs_root=runs).run()
    return trials_of(runs / load_spec(spec_path).name)


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_half_a_gpu_per_trial_runs_four_at_once_on_two_gpus(tmp_path):
    # No GPU here: Ray is told there are 2, which is all its scheduler needs; each task then
    # gets CUDA_VISIBLE_DEVICES set to the GPU it was given.
    ray.init(address="local", num_cpus=8, num_gpus=2, include_dashboard=False, log_to_driver=False)
    try:
        spec = write_spec(
            tmp_path,
            """
            name: gpus
            method: grid
            program: sweep_programs:steps
            metric: {name: loss, goal: minimize}
            resources: {cpus: 1, gpus: 0.5}
            parameters:
              x: {values: [1, 2, 3, 4, 5, 6, 7, 8]}
              steps: {value: 8}
              step_seconds: {value: 0.1}
            """,
        )
        trials = run(spec, tmp_path / "runs")
    finally:
        ray.shutdown()
    assert all(t.state == TrialState.COMPLETE for t in trials) and len(trials) == 8
    starts = [s for t in trials for s in starts_of(t)]
    assert most_at_once([(s["began"], s["ended"]) for s in starts]) == 4
    devices = [s["cuda_visible_devices"] for s in starts]
    assert set(devices) == {"0", "1"}
    for device in ("0", "1"):  # never more than two trials on one GPU at a time
        on_device = [
            (s["began"], s["ended"]) for s in starts if s["cuda_visible_devices"] == device
        ]
        assert most_at_once(on_device) <= 2


@pytest.fixture
def two_node_cluster():
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    worker = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster, worker
    ray.shutdown()
    cluster.shutdown()


def test_two_nodes_share_the_sweep_and_a_dead_node_costs_only_a_retry(two_node_cluster, tmp_path):
    cluster, worker = two_node_cluster
    spec = write_spec(
        tmp_path,
        """
        name: nodes
        method: grid
        program: sweep_programs:steps
        metric: {name: loss, goal: minimize}
        max_retries: 2
        parameters:
          x: {values: [1, 2, 3, 4]}
          steps: {value: 40}
          step_seconds: {value: 0.1}
        """,
    )
    worker_node_id = worker.node_id

    def remove_worker_node_midway() -> None:  # once a trial on it has made progress
        deadline = time.time() + 60
        while time.time() < deadline:
            trials = []
            if (tmp_path / "runs" / "nodes" / store.SWEEP_FILE).exists():
                trials = store.load_study(
                    store.read_sweep_file(tmp_path / "runs" / "nodes")
                ).get_trials()
            for trial in trials:
                on_worker = trial.user_attrs.get("node_id") == worker_node_id
                midway = max(trial.intermediate_values, default=0) >= 5
                if on_worker and trial.state == TrialState.RUNNING and midway:
                    cluster.remove_node(worker, allow_graceful=False)
                    removed.append(trial.number)
                    return
            time.sleep(0.05)

    removed: list[int] = []  # the trial that was running on the node when it died
    remover = threading.Thread(target=remove_worker_node_midway, daemon=True)
    remover.start()
    trials = run(spec, tmp_path / "runs")
    remover.join()

    assert all(t.state == TrialState.COMPLETE for t in trials) and len(trials) == 4
    assert len(removed) == 1  # the worker node ran a trial, and died under it
    (retried,) = [t for t in trials if t.user_attrs.get("retries")]
    assert retried.number == removed[0] and retried.user_attrs["retries"] == 1
    assert retried.user_attrs["node_id"] != worker_node_id  # finished on the surviving node
    assert starts_of(retried)[-1]["resumed_from_step"] >= 5  # from its checkpoint
