"""Code shipping: a sweep runs on a cluster whose Python has Ray, torch, optuna and wandb but
not orchestrate. Ray's runtime environment carries the code to every node: the `orchestrator`
and `trainer` packages as `py_modules`, the spec's directory (a W&B script, a
`module:function` program and what they import beside them) as the `working_dir`, which Ray
makes each worker's current directory and puts first on its `sys.path`.

One function builds it for every path: `orchestrate SPEC --address` (`run.setup.start_ray`),
`orchestrate submit` and the service's queries (`service.client`). Ray uploads each package
once (it is named by its content's hash) and refuses one over its gRPC limit (512 MiB).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from orchestrator.programs.base import TrialRequest

# Set in a shipped job's workers: the spec's directory is the worker's current directory.
SHIPPED_ENV = "ORCHESTRATE_SPEC_DIR_SHIPPED"
# Never uploaded (gitignore-style, at any depth): runs, environments, caches, checkpoints.
EXCLUDES = [
    ".git",
    ".venv",
    "venv",
    "runs",
    "wandb",
    "__pycache__",
    "*.pyc",
    "*.pt",
    ".pytest_cache",
    ".ruff_cache",
]


def runtime_env(
    spec_dir: str | Path | None = None, env_vars: dict[str, str] | None = None
) -> dict[str, Any]:
    """Ray's runtime environment that ships orchestrate (and, given `spec_dir`, the spec's
    directory) to every node; `env_vars` are set for the job's processes too."""
    import orchestrator
    import trainer

    env: dict[str, Any] = {
        "py_modules": [package_dir(orchestrator), package_dir(trainer)],
        "excludes": list(EXCLUDES),
        "env_vars": dict(env_vars or {}),
    }
    if spec_dir is not None:
        env["working_dir"] = str(spec_dir)
        env["env_vars"][SHIPPED_ENV] = "1"
    return env


def package_dir(package: Any) -> str:
    return str(Path(package.__file__).resolve().parent)


def shipped_here() -> bool:
    """Whether this process runs in a job that shipped the spec's directory."""
    return bool(os.environ.get(SHIPPED_ENV))


def as_shipped(request: TrialRequest) -> TrialRequest:
    """On a worker: the request with the spec's directory where Ray unpacked it on this node
    (the worker's current directory) instead of where it lay on the controller's machine."""
    if not shipped_here():
        return request
    here = os.getcwd()
    path = [here] + [p for p in request.python_path if p not in (here, request.spec_dir)]
    return dataclasses.replace(request, spec_dir=here, python_path=path)
