"""`storage: postgresql://...` against a real PostgreSQL server (`postgres_server`, started by
the session from Debian's package): a sweep end to end, a controller SIGKILLed midway and
resumed with nothing run twice, and two controllers on two run directories sharing one study
with `run_cap` met exactly (also on a shared journal file).

Skipped only where PostgreSQL is not installed and cannot be (`.ci/run` installs it); the
skip and a warning in the summary say so."""

from __future__ import annotations

import importlib.metadata
import threading
import warnings

import optuna
import pytest
from conftest import write_spec
from optuna.storages import JournalStorage
from optuna.trial import TrialState
from postgres_server import PostgresServer, server_bin
from test_controller_restart import SPEC as RESTART_SPEC
from test_controller_restart import sigkill_then_rerun

from orchestrator import cli, load_sweep, store
from orchestrator.run.controller import Controller
from orchestrator.spec import load_spec
from orchestrator.store import attrs
from orchestrator.tracking.wandb_records import read_run_history

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of our own on 127.0.0.1, for the whole session."""
    bindir = server_bin()
    if bindir is None:
        reason = (
            "PostgreSQL is not installed (no initdb): the PostgreSQL store is NOT tested; "
            "install Debian's `postgresql` package (.ci/run does)"
        )
        warnings.warn(pytest.PytestWarning(reason), stacklevel=1)
        pytest.skip(reason)
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


GRID = """
    name: pg
    method: grid
    program: sweep_programs:steps
    storage: {url}
    metric: {{name: loss, goal: minimize}}
    parameters:
      x: {{values: [1.0, 2.0, 3.0]}}
      steps: {{value: 3}}
      step_seconds: {{value: 0.01}}
"""


def test_a_sweep_runs_end_to_end_on_postgresql(postgres, local_ray, tmp_path):
    url = postgres.url()
    spec = write_spec(tmp_path, GRID.format(url=url))
    assert cli.main(["run", str(spec), "--runs", str(tmp_path / "runs")]) == 0
    run_dir = tmp_path / "runs" / "pg"
    info = store.read_sweep_file(run_dir)
    assert info.storage == url
    assert info.versions["storage"] == "postgresql+psycopg"
    assert info.versions["psycopg"] == importlib.metadata.version("psycopg")
    assert info.versions["optuna"] == importlib.metadata.version("optuna")

    # In the database, as plain Optuna reads it.
    trials = optuna.load_study(study_name="pg", storage=url).get_trials()
    assert sorted(t.user_attrs[attrs.PLAN_INDEX] for t in trials) == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.value for t in trials) == pytest.approx([x + 1 / 3 for x in (1, 2, 3)])
    sweep = load_sweep(run_dir)
    assert len(sweep) == 3 and sweep.best.params["x"] == 1.0
    assert cli.main(["status", str(run_dir)]) == 0

    # The summary run records the versions the results were made with.
    summary = read_run_history(run_dir / "wandb", f"{info.uid}-summary")
    assert summary.config["versions"] == info.versions


def test_a_controller_sigkilled_midway_resumes_on_postgresql(postgres, tmp_path):
    url = postgres.url()
    spec = RESTART_SPEC.replace("method: grid", f"method: grid\n    storage: {url}")
    sigkill_then_rerun(tmp_path, spec)
    assert store.read_sweep_file(tmp_path / "runs" / "restart").storage == url


def test_controllers_opening_an_empty_database_at_once_all_open_it(postgres, tmp_path):
    """The first open makes Optuna's tables; several at once collide in PostgreSQL's catalog
    (each of 3 tries failed before `store.database` tried again)."""
    url = postgres.url()
    barrier = threading.Barrier(4, timeout=60)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            barrier.wait()
            storage = store.open_storage(url, tmp_path)
            optuna.create_study(storage=storage, study_name="at-once", load_if_exists=True)
        except BaseException as error:  # noqa: BLE001 (the test reports it)
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["at-once"]


def test_a_password_given_as_an_environment_variable_is_in_no_file(
    postgres, local_ray, tmp_path, monkeypatch, capsys
):
    """`${envvar:NAME}` in the URL: the server checks the password (scram over TCP), the sweep
    runs and is read back with NAME set; no file under tmp_path holds the password; a wrong
    one is refused by the server, and an unset NAME is exit 2 naming it."""
    variable = "ORCHESTRATE_TEST_PG_PASSWORD"
    url = postgres.url()
    written = url.replace(f":{postgres.password}@", f":${{envvar:{variable}}}@")
    assert written != url
    monkeypatch.setenv(variable, postgres.password)
    spec = write_spec(tmp_path, GRID.format(url=written))
    assert cli.main(["run", str(spec), "--runs", str(tmp_path / "runs")]) == 0
    run_dir = tmp_path / "runs" / "pg"
    assert store.read_sweep_file(run_dir).storage == written
    assert [t.state for t in load_sweep(run_dir)] == ["complete"] * 3
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10 and not [
        p for p in files if postgres.password.encode() in p.read_bytes()
    ]

    capsys.readouterr()
    monkeypatch.setenv(variable, "not-the-password")
    assert cli.main(["status", str(run_dir)]) == 2
    assert "password authentication failed" in capsys.readouterr().err
    monkeypatch.delenv(variable)
    assert cli.main(["status", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"storage: {written}: {variable} is not set (in `${{envvar:{variable}}}`)"]


def test_a_database_that_cannot_be_reached_is_one_line_without_its_password(tmp_path, capsys):
    spec = write_spec(tmp_path, GRID.format(url="postgresql://me:hunter2@127.0.0.1:9/sweeps"))
    assert cli.main(["run", str(spec), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "storage: postgresql://me:***@127.0.0.1:9/sweeps: cannot open the sweep's store "
        '(connection failed: connection to server at "127.0.0.1", port 9 failed: '
        "Connection refused)"
    ]


CAPPED = """
    name: capped
    method: bayes
    program: sweep_programs:steps
    storage: {storage}
    study_name: capped
    run_cap: 3
    max_concurrent: 2
    metric: {{name: loss, goal: minimize}}
    parameters:
      x: {{min: 0.0, max: 5.0}}
      steps: {{value: 3}}
      step_seconds: {{value: 0.05}}
"""


def gate_first_creations(monkeypatch, storage_type: type, each: int) -> None:
    """Make the two controllers create their first `each` trials in step: neither creates its
    next trial until the other is about to create its own. So both count the sweep's trials
    before either adds the last one: with run_cap 3, both see 2 and ask for a third."""
    barrier = threading.Barrier(2, timeout=120)
    made = threading.local()
    original = storage_type.create_new_trial

    def gated(self, study_id, template_trial=None):
        done = getattr(made, "count", 0)
        if threading.current_thread().name.startswith("controller-") and done < each:
            made.count = done + 1
            barrier.wait()
        return original(self, study_id, template_trial)

    monkeypatch.setattr(storage_type, "create_new_trial", gated)


@pytest.mark.parametrize("kind", ["postgresql", "journal"])
def test_two_controllers_sharing_a_study_meet_run_cap_exactly(
    kind, request, local_ray, tmp_path, monkeypatch
):
    if kind == "postgresql":
        storage = request.getfixturevalue("postgres").url()
        storage_type = type(optuna.storages.get_storage(storage))
    else:
        storage = str(tmp_path / "shared.journal")
        storage_type = JournalStorage
    spec = load_spec(write_spec(tmp_path, CAPPED.format(storage=storage)))
    gate_first_creations(monkeypatch, storage_type, each=2)
    controllers = [Controller(spec, runs_root=tmp_path / f"runs_{n}") for n in ("a", "b")]
    errors: list[BaseException] = []

    def run(controller: Controller) -> None:
        try:
            controller.run()
        except BaseException as error:  # noqa: BLE001 (the test reports it)
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(c,), name=f"controller-{n}")
        for n, c in enumerate(controllers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors

    if kind == "postgresql":
        study = optuna.load_study(study_name="capped", storage=storage)
    else:
        study = optuna.load_study(
            study_name="capped", storage=JournalStorage(store.JournalFile(storage))
        )
    trials = study.get_trials()
    ran = [t for t in trials if not t.user_attrs.get(attrs.DISCARDED)]
    discarded = [t for t in trials if t.user_attrs.get(attrs.DISCARDED)]
    assert len(ran) == 3 and all(t.state == TrialState.COMPLETE for t in ran)
    assert [t.number for t in discarded] == [3]  # the last created, before it ran
    assert discarded[0].user_attrs[attrs.DISCARDED].startswith("past run_cap: 3 of")
    assert attrs.CHECKPOINT_DIR not in discarded[0].user_attrs
    owners = {t.user_attrs[attrs.OWNER]["id"] for t in ran}
    assert owners == {c.me["id"] for c in controllers}  # both ran trials of the study
    for controller in controllers:
        assert len(load_sweep(controller.run_dir)) == 3  # each folder reads the whole study
