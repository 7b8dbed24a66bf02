"""The versions of what a sweep's results depend on, recorded in `sweep.json` and the summary
wandb run, and compared when a sweep is resumed.

A sampler's defaults change between releases (Optuna 5.0 made TPE multivariate with a
constant liar), and so do a model's numerics between torch releases: a sweep resumed under
another minor line of optuna or torch mixes trials of two searches or two numerics. So the
sweep keeps the versions it was started with; a resume under another major.minor of either
says so in one `warning:` line (it is not refused: a user may mean it).

Versions are read from the installed distributions' metadata: no package is imported for
it, except the storage's database driver (the store imports it anyway).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sqlite3
import warnings
from typing import Any

from orchestrator.errors import UserNotice

# name in the record -> the distributions that provide it (the first one installed counts)
PACKAGES: dict[str, tuple[str, ...]] = {
    "orchestrate": ("orchestrate",),
    "torch": ("torch",),
    "optuna": ("optuna",),
    "ray": ("ray",),
    "wandb": ("wandb",),
    "numpy": ("numpy",),
}
COMPARED = ("optuna", "torch")  # a resume under another major.minor of these is said
DRIVERS = {  # SQLAlchemy's driver module -> its distributions
    "psycopg2": ("psycopg2-binary", "psycopg2"),
    "psycopg": ("psycopg", "psycopg-binary"),
    "pymysql": ("PyMySQL",),
    "mysqldb": ("mysqlclient",),
}


def current(storage: str | None) -> dict[str, str]:
    """What this process runs: python, orchestrate, torch, optuna, ray, wandb, numpy, and the
    driver of the sweep's storage (`journal` for a journal file: Optuna's own)."""
    found = {"python": platform.python_version()}
    for name, distributions in PACKAGES.items():
        version = _installed(distributions)
        if version:
            found[name] = version
    found.update(_storage_driver(storage))
    return found


def _installed(distributions: tuple[str, ...]) -> str | None:
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _storage_driver(storage: str | None) -> dict[str, str]:
    """The store's driver and its version: SQLAlchemy and the DB-API module of a URL."""
    if not storage or "://" not in storage:
        return {"storage": "journal"}
    from sqlalchemy.engine import make_url  # Optuna's RDB storage depends on SQLAlchemy

    try:
        url = make_url(storage)
        backend, driver = url.get_backend_name(), url.get_dialect().driver
    except Exception:  # an unknown dialect: Optuna reports it when it opens the store
        return {"storage": storage.split("://", 1)[0]}
    found = {"storage": f"{backend}+{driver}", "sqlalchemy": _installed(("SQLAlchemy",)) or ""}
    if backend == "sqlite":
        found["sqlite"] = sqlite3.sqlite_version
    else:
        found[driver] = _installed(DRIVERS.get(driver, (driver,))) or _module_version(driver)
    return {k: v for k, v in found.items() if v}


def _module_version(module: str) -> str:
    try:
        version = getattr(importlib.import_module(module), "__version__", "")
    except ImportError:
        return ""
    return str(version).split()[0] if version else ""


def minor_line(version: str | None) -> str | None:
    """`2.13.0+cpu` -> `2.13`: the part of a version a result depends on."""
    if not version:
        return None
    parts = version.split("+")[0].split(".")
    return ".".join(parts[:2])


def drift(started: dict[str, Any] | None, now: dict[str, str]) -> list[str]:
    """`optuna 4.5.0 -> 5.0.0` for each of COMPARED whose major.minor differs."""
    if not started:
        return []
    return [
        f"{name} {started.get(name)} -> {now.get(name)}"
        for name in COMPARED
        if minor_line(started.get(name)) != minor_line(now.get(name))
    ]


def drift_notice(run_dir: Any, started: dict[str, Any] | None, now: dict[str, str]) -> str | None:
    """The one line for a sweep resumed under other versions than it was started with."""
    changed = drift(started, now)
    if not changed:
        return None
    return (
        f"{run_dir}: resumed under other versions than it was started with "
        f"({'; '.join(changed)}): its new trials may not be comparable with the earlier ones"
    )


def for_start(started: dict[str, str] | None, storage: str | None, run_dir: Any) -> dict[str, Any]:
    """A sweep's `versions` as it starts (those it was started with; this process's for a new
    sweep or one recorded before versions were) and its `resumed_versions` (this start's,
    when they differ), as `SweepFile` fields. A resume under another major.minor of optuna
    or torch is said in one `warning:` line."""
    now = current(storage)
    if not started:
        return {"versions": now, "resumed_versions": None}
    note = drift_notice(run_dir, started, now)
    if note:
        warnings.warn(note, UserNotice, stacklevel=3)
    return {"versions": started, "resumed_versions": now if now != started else None}
