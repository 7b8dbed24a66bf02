"""Running a sweep: the controller's loop (`controller`), what it sets up first (`setup`),
what it sends each worker (`dispatch`, `naming`), how trials end (`endings`), the Ray task on
the worker (`worker`) and the live table (`display`).

`Controller` is imported on first use: a worker imports `orchestrator.run.worker` without the
controller's imports.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Controller", "SweepOutcome"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from orchestrator.run import controller

        return getattr(controller, name)
    raise AttributeError(f"module 'orchestrator.run' has no attribute {name!r}")
