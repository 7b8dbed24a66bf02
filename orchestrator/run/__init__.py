"""Running a sweep: the controller's loop (`controller`), what it sets up first (`setup`),
what it sends each worker (`dispatch`, `naming`), how trials end (`endings`), the Ray task on
the worker (`worker`) and the live table (`display`).

`Controller` is imported on first use: a worker imports `orchestrator.run.worker` without the
controller's imports.
"""

from __future__ import annotations

from orchestrator.lazy import lazy_exports

_EXPORTS = {
    "Controller": "orchestrator.run.controller",
    "SweepOutcome": "orchestrator.run.active",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
