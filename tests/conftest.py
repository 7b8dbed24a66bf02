"""Shared test fixtures: a real local Ray, and sweep specs written next to the test programs."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

TESTS = Path(__file__).parent
PROGRAMS = TESTS / "sweep_programs.py"


@pytest.fixture(scope="module")
def local_ray():
    """A real local Ray with 2 CPUs, shared by the tests of one module."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
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
