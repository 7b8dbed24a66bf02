"""Shared test fixtures and helpers: a real local Ray, sweep specs written next to the test
programs, a sweep's trials read from its store, and waiting for a condition.

`tests/unit/` runs without Ray or subprocesses (`make test-fast`); `tests/integration/` runs
the real parts: Ray, wandb offline, Optuna storages, the CLI in its own process."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import time
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

TESTS = Path(__file__).parent
ROOT = TESTS.parent
PROGRAMS = TESTS / "sweep_programs.py"


@pytest.fixture(scope="module")
def local_ray():
    """A real local Ray with 2 CPUs, shared by the tests of one module."""
    import ray

    ray.init(  # our own, even where a `ray start` head of another test runs
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    yield ray
    ray.shutdown()


def write_spec(directory: Path, text: str, name: str = "sweep.yaml") -> Path:
    """Write a spec next to a copy of tests/sweep_programs.py and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROGRAMS, directory / PROGRAMS.name)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def trial_starts(trial) -> list[dict]:
    """The starts a `sweep_programs.steps` trial logged (one line per start that ended)."""
    path = Path(trial.user_attrs["checkpoint_dir"]) / "starts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def trials_of(run_dir: Path) -> list:
    """The trials in a sweep's store, as Optuna's FrozenTrials ([] before the sweep starts),
    their directories made absolute as `load_sweep` does."""
    from orchestrator import store

    if not (Path(run_dir) / store.SWEEP_FILE).exists():
        return []
    info = store.read_sweep_file(run_dir)
    trials = store.load_study(info).get_trials()
    for trial in trials:  # the paths it records (relative to the sweep) where they lie now
        for key in (store.attrs.CHECKPOINT_DIR, store.attrs.WANDB_DIR):
            if trial.user_attrs.get(key):
                trial.user_attrs[key] = store.located(trial.user_attrs[key], Path(info.run_dir))
    return trials


def wait_for(condition, timeout: float = 120.0, interval: float = 0.1) -> None:
    """Wait until `condition()` is true; fail after `timeout` seconds."""
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(interval)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wandb_service_pids(parent: int | str = "self") -> list[int]:
    """Children of a process (of any of its threads) that run wandb's service."""
    tasks = Path(f"/proc/{parent}/task").glob("*/children")
    children = " ".join(p.read_text() for p in tasks)
    return [int(pid) for pid in children.split() if is_wandb_core(pid)]


def is_wandb_core(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "wandb-core"
    except OSError:
        return False


def wait_until_dead(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX":
                return
        except OSError:
            return
        time.sleep(0.01)
    raise AssertionError(f"wandb-core {pid} still alive after SIGKILL")


_exit_status = 0


def pytest_sessionfinish(session, exitstatus) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config) -> None:
    """End the test process once pytest has printed its summary, with pytest's own status.

    CI's one full run passed every test and then died of a segmentation fault in the
    interpreter's teardown, after the summary (native code of one of the libraries the tests
    load: Ray, torch, pyarrow, wandb; it did not reproduce here). Nothing the tests check
    happens after this point, so the process leaves without that teardown."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
