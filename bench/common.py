"""Shared set-up for the benchmarks: a warm local Ray and specs next to the test programs."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "sweep_programs.py"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def write_spec(directory: Path, text: str) -> Path:
    """A spec file beside a copy of tests/sweep_programs.py (the controller finds it there)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROGRAMS, directory / PROGRAMS.name)
    path = directory / "bench.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def start_ray(num_cpus: int = 2) -> None:
    import ray

    # Our own Ray, even where a `ray start` head runs on the machine.
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


class QuietDisplay:
    """No live table: a benchmark prints its own lines."""

    def start(self, title, total, done, metric="metric"):
        pass

    def update(self, view, event):
        pass

    def set_total(self, total):
        pass

    def stop(self):
        pass
