"""`sweep.json`: how to reopen a sweep from its directory (`runs/<sweep>/`).

The controller writes it when a sweep starts; `status`, `resume`, `report`, `load_sweep` and
the service read it. It names the spec's copy and the overrides the sweep was started with,
the store (an Optuna storage URL or a journal file) and the study in it, the plan's
signature, so that a changed plan is refused rather than mixed into the old one, and the
versions of the packages its results depend on (`versions`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError
from orchestrator.store.json_record import JsonRecord

SWEEP_FILE = "sweep.json"
LOCK_FILE = "controller.lock"  # held (flock) by the controller running the sweep; holds its pid


@dataclass(frozen=True)
class SweepFile(JsonRecord):
    """The contents of a sweep's `sweep.json`."""

    name: str
    run_dir: str
    storage: str  # an Optuna storage URL, or the journal file's path
    study_name: str
    spec_copy: str  # the spec as the sweep was started (`runs/<sweep>/spec.yaml`)
    spec_path: str = ""  # where the spec was when the sweep started
    method: str = ""
    metric: str | None = None
    goal: str = "minimize"
    overrides: list[str] = field(default_factory=list)
    plan: str | None = None  # the plan's signature (JSON), compared on every start
    total: int | None = None  # the trials the sweep plans, or its run_cap
    spec_hash: str = ""
    trial_config: dict[str, Any] | None = None  # what makes its trials alike (dotted keys)
    uid: str = ""  # makes the sweep's wandb run ids unique
    versions: dict[str, str] | None = None  # what it was started with (`store.versions`)
    resumed_versions: dict[str, str] | None = None  # its latest start's, when they differ

    @property
    def metric_name(self) -> str:
        """The metric's name, or `value` for a sweep without one."""
        return self.metric or "value"

    @property
    def spec_overrides(self) -> list[str]:
        """What loads the spec copy as this sweep: its overrides, and its name."""
        return [*self.overrides, f"name={self.name}"]


def write_sweep_file(run_dir: Path, sweep: SweepFile) -> None:
    """Write `runs/<sweep>/sweep.json` at once (a reader never sees half of it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (SWEEP_FILE + ".tmp")
    tmp.write_text(json.dumps(sweep.to_dict(), indent=2, default=str))
    tmp.replace(run_dir / SWEEP_FILE)


def read_sweep_file(run_dir: str | Path) -> SweepFile:
    """The sweep file of a sweep directory, its paths where they lie now (a sweep copied or
    moved elsewhere is its own sweep there); a clear error when it is none."""
    path = Path(run_dir) / SWEEP_FILE
    if not path.exists():
        raise UserError(f"{run_dir}: not a sweep directory (no {SWEEP_FILE})")
    info = SweepFile.from_dict(json.loads(path.read_text()))
    here = Path(run_dir).resolve()
    return dataclasses.replace(
        info,
        run_dir=str(here),
        storage=located(info.storage, here),
        spec_copy=located(info.spec_copy, here),
    )


def records_relative_paths(storage: str | None, run_dir: Path) -> bool:
    """Whether a sweep records its paths relative to its folder: when its store lies in it
    (the default journal). A store outside it (a shared journal, a database) may serve
    several sweep folders, so the paths it holds stay absolute."""
    if storage is None:
        return True
    return "://" not in storage and Path(storage).resolve().is_relative_to(run_dir.resolve())


def within_sweep(path: str, run_dir: Path) -> str:
    """How a sweep records `path`: relative to its folder when inside it, else as given."""
    if "://" in path:
        return path
    resolved = Path(path).resolve()
    return (
        str(resolved.relative_to(run_dir.resolve()))
        if resolved.is_relative_to(run_dir.resolve())
        else path
    )


def located(path: str, run_dir: Path) -> str:
    """Where a path a sweep recorded lies now: a relative one is in the sweep's folder."""
    return path if "://" in path else str(Path(run_dir, path))


def sweep_of_spec_copy(spec_path: str | Path) -> SweepFile | None:
    """The sweep whose directory holds this spec (its copy, as resume and report load it),
    or None for a spec anywhere else."""
    run_dir = Path(spec_path).resolve().parent
    return read_sweep_file(run_dir) if (run_dir / SWEEP_FILE).exists() else None


SWEEP_MARKS = (SWEEP_FILE, LOCK_FILE, "study.journal")  # any one marks a sweep's folder


def sweep_dirs(root: str | Path) -> list[Path]:
    """Every sweep directory under `root`, by name: those with a sweep file, and those whose
    controller is setting one up or whose sweep file is lost (`status` says which)."""
    return sorted({p.parent for mark in SWEEP_MARKS for p in Path(root).glob(f"*/{mark}")})
