"""Pinned results: a sweep records the versions its results depend on in `sweep.json` (and the
summary run), keeps those it was started with, and says when it is resumed under another
major.minor of optuna or torch."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import warnings

import pytest
from conftest import ROOT, write_spec

from orchestrator import store
from orchestrator.errors import UserNotice
from orchestrator.plan import expand
from orchestrator.results.report import versions_config
from orchestrator.run.setup import open_study
from orchestrator.spec import load_spec
from orchestrator.store import versions

SPEC = "method: grid\nprogram: sweep_programs:noop\nmetric: {name: loss}\nparameters: {x: {values: [1, 2]}}"


def test_the_versions_of_what_results_depend_on_are_read_from_the_installed_packages():
    found = versions.current(None)
    assert found["python"] == platform.python_version()
    for name in ("orchestrate", "torch", "optuna", "ray", "wandb", "numpy"):
        assert found[name] == importlib.metadata.version(name)
    assert found["storage"] == "journal"
    database = versions.current("postgresql://someone@127.0.0.1:5432/sweeps")
    assert database["storage"] == "postgresql+psycopg"  # SQLAlchemy 2.1's driver for the URL
    assert database["psycopg"] == importlib.metadata.version("psycopg")
    assert database["sqlalchemy"] == importlib.metadata.version("sqlalchemy")
    assert versions.current("sqlite:///x.db")["storage"] == "sqlite+pysqlite"


def test_the_pins_hold_the_installed_major_lines():
    """pyproject's pins admit what is installed (a pin that excludes it fails `make install`)."""
    text = (ROOT / "pyproject.toml").read_text()
    for pin in ('"optuna>=5.0,<6"', '"ray[default]>=2.60,<3"', '"torch>=2.2,<3"'):
        assert pin in text
    assert versions.minor_line(importlib.metadata.version("wandb")) == "0.31"
    assert '"wandb>=0.31,<0.32"' in text


def test_a_sweep_keeps_its_versions_and_warns_when_resumed_under_another_optuna(tmp_path):
    spec = load_spec(write_spec(tmp_path, SPEC))
    run_dir = tmp_path / "runs" / spec.name
    open_study(spec, run_dir, expand(spec), [], 2)
    recorded = json.loads((run_dir / store.SWEEP_FILE).read_text())
    assert recorded["versions"] == versions.current(None)
    assert recorded["resumed_versions"] is None

    with warnings.catch_warnings():  # resumed as it was: no warning
        warnings.simplefilter("error")
        open_study(spec, run_dir, expand(spec), [], 2)

    # As if it had been started under Optuna 4.5 and torch 2.12.1.
    started = {**recorded["versions"], "optuna": "4.5.0", "torch": "2.12.1"}
    (run_dir / store.SWEEP_FILE).write_text(json.dumps({**recorded, "versions": started}))
    with pytest.warns(UserNotice) as caught:
        open_study(spec, run_dir, expand(spec), [], 2)
    (notice,) = [str(w.message) for w in caught]
    now = versions.current(None)
    assert f"optuna 4.5.0 -> {now['optuna']}" in notice
    assert f"torch 2.12.1 -> {now['torch']}" in notice
    info = store.read_sweep_file(run_dir)
    assert info.versions == started and info.resumed_versions == now

    # What the summary run's config holds.
    assert versions_config(info) == {"versions": started, "resumed_versions": now}
    older = dataclasses.replace(info, versions=None, resumed_versions=None)  # before versions
    assert versions_config(older) == {"versions": now}


def test_only_a_new_major_or_minor_line_is_a_drift():
    started = {"optuna": "5.0.0", "torch": "2.13.0+cpu"}
    assert versions.drift(started, {"optuna": "5.0.3", "torch": "2.13.1"}) == []
    assert versions.drift(started, {"optuna": "5.1.0", "torch": "2.13.0"}) == [
        "optuna 5.0.0 -> 5.1.0"
    ]
    assert versions.drift(None, {"optuna": "5.1.0"}) == []
