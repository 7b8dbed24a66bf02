"""Several controllers on one Optuna storage, and a sweep joining a plain Optuna study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from conftest import write_spec
from optuna.storages import JournalStorage
from optuna.trial import TrialState

from orchestrator import store
from orchestrator.run.controller import Controller
from orchestrator.spec import load_spec
from orchestrator.store import attrs, owners

# ---------------------------------------------------------------- owners and claims


def running_trial(study: optuna.Study, **attrs) -> int:
    trial = study.ask()
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    return trial._trial_id


def test_only_orphans_are_adopted_and_each_by_one_controller(tmp_path):
    path = str(tmp_path / "study.journal")
    study = optuna.create_study(storage=JournalStorage(store.JournalFile(path)), study_name="s")
    me = owners.new_identity()
    elsewhere = {"id": "gone", "machine": "another-host", "pid": 1}
    alive_here = {"id": "alive", "machine": owners.machine_id(), "pid": os.getpid()}
    dead_here = {"id": "dead", "machine": owners.machine_id(), "pid": _dead_pid()}
    silent = [running_trial(study, controller=elsewhere, heartbeat=1.0) for _ in range(4)]
    beating = running_trial(study, controller=elsewhere, heartbeat=1.0)
    released = running_trial(study, controller=None)
    dead = running_trial(study, controller=dead_here, heartbeat=1.0)
    live = running_trial(study, controller=alive_here, heartbeat=1.0)
    running_trial(study)  # a plain Optuna worker's: no owner attribute, never ours

    watch = owners.OrphanWatch(me, stale_seconds=0.5)
    found = {t._trial_id for t in watch.orphans(study.get_trials())}
    assert found == {released, dead}  # no wait for these two
    time.sleep(0.6)
    for trial_id in (beating, live):  # their owners live: their heartbeats move on
        study._storage.set_trial_user_attr(trial_id, attrs.HEARTBEAT, 2.0)
    found = {t._trial_id for t in watch.orphans(study.get_trials())}
    assert found == {released, dead, *silent}
    assert beating not in found and live not in found

    # Two controllers (separate storage objects, as separate processes) claim the same four
    # orphans at the same moment: each orphan goes to exactly one of them.
    claimants = [owners.new_identity() for _ in range(2)]
    won: dict[str, list[int]] = {}
    barrier = threading.Barrier(2)

    def claim(identity: dict) -> None:
        storage = JournalStorage(store.JournalFile(path))
        orphans = [storage.get_trial(trial_id) for trial_id in silent]
        barrier.wait()
        won[identity["id"]] = owners.claim(storage, orphans, identity, wait=0.5)

    threads = [threading.Thread(target=claim, args=(c,)) for c in claimants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = (set(won[c["id"]]) for c in claimants)
    assert first | second == set(silent) and not first & second
    for trial_id in silent:
        owner = study._storage.get_trial(trial_id).user_attrs[attrs.OWNER]
        assert trial_id in won[owner["id"]]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# ---------------------------------------------------------------- two controllers at once

SHARED = """
    name: shared
    method: grid
    program: sweep_programs:steps
    storage: {journal}
    study_name: shared
    metric: {{name: loss, goal: minimize}}
    parameters:
      x: {{values: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}}
      steps: {{value: 40}}
      step_seconds: {{value: 0.05}}
"""


def orchestrate(spec: Path, runs: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--runs", str(runs)]
    command += ["--num-cpus", "1"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_controllers_share_a_journal_without_duplicates_or_losses(tmp_path):
    journal = tmp_path / "shared.journal"
    spec = write_spec(tmp_path, SHARED.format(journal=journal))
    first = orchestrate(spec, tmp_path / "runs_a")
    second = orchestrate(spec, tmp_path / "runs_b")
    storage = JournalStorage(store.JournalFile(str(journal)))

    def trials() -> list[optuna.trial.FrozenTrial]:
        try:
            return optuna.load_study(study_name="shared", storage=storage).get_trials()
        except KeyError:
            return []

    def owned_by(trial, process) -> bool:
        return (trial.user_attrs.get(attrs.OWNER) or {}).get("pid") == process.pid

    def first_is_midway() -> list:
        return [
            t
            for t in trials()
            if t.state == TrialState.RUNNING
            and owned_by(t, first)
            and max(t.intermediate_values, default=0) >= 5
        ]

    deadline = time.time() + 180
    while not first_is_midway():
        assert time.time() < deadline and first.poll() is None, "the first never got a trial"
        time.sleep(0.1)
    reached = {t.number: max(t.intermediate_values) for t in first_is_midway()}
    os.kill(first.pid, signal.SIGKILL)  # the second adopts what the first was running
    first.wait(timeout=30)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode()[-2000:]

    everything = trials()
    kept = [t for t in everything if not t.user_attrs.get(attrs.DISCARDED)]
    assert sorted(t.user_attrs["plan_index"] for t in kept) == [0, 1, 2, 3, 4, 5]
    assert all(t.state == TrialState.COMPLETE for t in kept)
    for trial in everything:
        if trial.user_attrs.get(attrs.DISCARDED):  # a second copy of a point, never run
            assert trial.state == TrialState.FAIL and "checkpoint_dir" not in trial.user_attrs
    for trial in kept:  # every point ran once: its starts never overlap, the last finished
        lines = Path(trial.user_attrs["checkpoint_dir"], "starts.jsonl").read_text()
        starts = [json.loads(line) for line in lines.splitlines()]
        assert starts[-1]["end_step"] == 40
        for before, after in zip(starts, starts[1:], strict=False):
            assert after["resumed_from_step"] >= before["end_step"]
    for number, step in reached.items():  # adopted from its checkpoint, in the first's dir
        adopted = next(t for t in kept if t.number == number)
        assert owned_by(adopted, second)
        assert Path(adopted.user_attrs["checkpoint_dir"]).is_relative_to(tmp_path / "runs_a")
        last = json.loads(
            Path(adopted.user_attrs["checkpoint_dir"], "starts.jsonl").read_text().splitlines()[-1]
        )
        assert last["resumed_from_step"] >= step


# ---------------------------------------------------------------- a plain Optuna study

PARABOLA = """
def run(config, report, checkpoint_dir):
    loss = (float(config["x"]) - 3.0) ** 2
    report({"step": 1, "loss": loss})
    return {"loss": loss}
"""

ATTACH = """
    name: attach
    method: bayes
    program: parabola:run
    storage: {storage}
    study_name: {study}
    run_cap: 3
    metric: {{name: loss, goal: minimize}}
    optuna: {{sampler: tpe, sampler_options: {{n_startup_trials: 5}}}}
    parameters:
      x: {{min: -10.0, max: 10.0}}
"""


def snapshot(trial: optuna.trial.FrozenTrial) -> tuple:
    return (
        trial.number,
        trial.state,
        trial.params,
        trial.value,
        trial.intermediate_values,
        trial.user_attrs,
        trial.system_attrs,
        trial.datetime_start,
        trial.datetime_complete,
    )


def test_a_sweep_joins_a_plain_optuna_study_and_rewrites_nothing(local_ray, tmp_path):
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    plain = optuna.create_study(
        storage=url, study_name="plain", sampler=optuna.samplers.TPESampler(seed=1)
    )
    plain.set_user_attr("owner", "someone else")
    plain.optimize(lambda trial: (trial.suggest_float("x", -10, 10) - 3.0) ** 2, n_trials=12)
    before = [snapshot(t) for t in plain.get_trials()]
    (tmp_path / "parabola.py").write_text(PARABOLA)

    spec = write_spec(tmp_path, ATTACH.format(storage=url, study="plain"))
    Controller(load_spec(spec), runs_root=tmp_path / "runs").run()
    after = optuna.load_study(study_name="plain", storage=url)
    trials = after.get_trials()
    assert [snapshot(t) for t in trials[:12]] == before  # its trials as they were
    assert after.user_attrs == {"owner": "someone else"} and after.direction.name == "MINIMIZE"
    joined = trials[12:]
    assert [t.number for t in joined] == [12, 13, 14]  # run_cap counts the sweep's own
    assert all(t.state == TrialState.COMPLETE for t in joined)
    assert all(t.value == pytest.approx((t.params["x"] - 3) ** 2) for t in joined)

    # Its trials informed the sampler. The same spec on an empty study draws its first points
    # at random (n_startup_trials) from the same seed: had the sampler ignored the study's
    # trials, it would have drawn exactly these. With them, TPE searches where they were good.
    empty = tmp_path / "empty.journal"
    fresh = write_spec(tmp_path / "fresh", ATTACH.format(storage=empty, study="empty"))
    (tmp_path / "fresh" / "parabola.py").write_text(PARABOLA)
    Controller(load_spec(fresh), runs_root=tmp_path / "fresh" / "runs").run()
    cold = optuna.load_study(
        study_name="empty", storage=JournalStorage(store.JournalFile(str(empty)))
    )
    assert not {t.params["x"] for t in cold.get_trials()} & {t.params["x"] for t in joined}
    distance = [abs(t.params["x"] - 3) for t in joined]
    plain_distance = [abs(t.params["x"] - 3) for t in trials[:12]]
    assert sum(distance) / 3 < sum(plain_distance) / 12


def test_attaching_to_a_study_of_the_other_direction_is_refused(local_ray, tmp_path):
    url = f"sqlite:///{tmp_path / 'max.db'}"
    optuna.create_study(storage=url, study_name="max", direction="maximize")
    (tmp_path / "parabola.py").write_text(PARABOLA)
    spec = write_spec(tmp_path, ATTACH.format(storage=url, study="max"))
    with pytest.raises(Exception, match="study 'max' is to maximize, but metric.goal is minimize"):
        Controller(load_spec(spec), runs_root=tmp_path / "runs").run()
