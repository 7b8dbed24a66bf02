"""The node probe: before a sweep starts on a cluster, one tiny Ray task on each alive node a
trial fits on (pinned there, `soft=False`) checks that the node's Python can import what a
trial imports: Ray, torch, optuna, wandb and the rest of orchestrate's runtime (by importing
the worker's own modules, shipped with the job), and a user's program's top-level imports
(`Program.imports_needed`, found, not imported). A node lacking one is a UserError line naming
the node and the package, before any trial is dispatched, instead of every trial failing.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import re
import time
from pathlib import Path
from typing import Any

import ray

from orchestrator.errors import UserError

# The runtime a trial's worker imports, named first because they are the ones a cluster's
# image may lack; then orchestrate's worker modules, whose imports bring the rest.
RUNTIME = ("torch", "optuna", "wandb")
WORKER_MODULES = (
    "orchestrator.run.worker",
    "orchestrator.programs.in_process",
    "orchestrator.programs.script_run",
    "orchestrator.programs.function",
    "orchestrator.programs.trainer",
    "trainer.train",
)
PROBE_TIMEOUT = 300.0  # a node's first task sets up the job's runtime environment
NO_MODULE = re.compile(r"No module named '([\w.]+)'")


def check_nodes(
    spec: Any, spec_dir: Path | None, timeout: float = PROBE_TIMEOUT
) -> tuple[int, float]:
    """Probe every node a trial of `spec` fits on; raise UserError (a line per missing
    package, naming its nodes) when one cannot import what a trial needs. Returns how many
    nodes it probed and the seconds it took."""
    started = time.monotonic()
    needed_by = spec.trial_program.imports_needed(spec_dir) if spec_dir else {}
    if spec.checkpoints is not None:
        needed_by["pyarrow"] = "the spec's checkpoints: store"  # uploads, downloads
    refs: dict[Any, str] = {}
    for node in trial_nodes(spec.resources.cpus, spec.resources.gpus_needed):
        strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
            node["NodeID"], soft=False
        )
        task = _remote_probe().options(num_cpus=0, scheduling_strategy=strategy, max_retries=0)
        refs[task.remote(list(RUNTIME + WORKER_MODULES), sorted(needed_by))] = node_ip(node)
    ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
    missing: dict[tuple[str, str], list[str]] = {}  # (package, who needs it) -> its nodes
    for ref in ready:
        try:
            found = ray.get(ref)
        except ray.exceptions.RayError as error:  # the probe itself could not be loaded
            match = NO_MODULE.search(str(error))
            found = [(match.group(1) if match else _first_line(error), "")]
        for module, wanted_by in found:
            nodes = missing.setdefault((module, needed_by.get(module, wanted_by)), [])
            nodes += [refs[ref]] if refs[ref] not in nodes else []
    lines = [_line(module, who, nodes) for (module, who), nodes in missing.items()]
    for ref in late:
        ray.cancel(ref, force=True)
        lines.append(f"node {refs[ref]}: did not answer the probe within {timeout:.0f} s")
    if lines:
        raise UserError(lines)
    return len(refs), time.monotonic() - started


def trial_nodes(cpus: float, gpus: float) -> list[dict[str, Any]]:
    """The alive nodes with the resources one trial needs (a head without CPUs runs none)."""
    return [
        node
        for node in ray.nodes()
        if node.get("Alive")
        and node["Resources"].get("CPU", 0) >= cpus
        and node["Resources"].get("GPU", 0) >= (gpus or 0)
    ]


def node_ip(node: dict[str, Any]) -> str:
    return node.get("NodeManagerAddress") or node["NodeID"][:12]


def probe(imports: list[str], finds: list[str]) -> list[tuple[str, str]]:
    """On a node: (missing module, the module that wanted it) for each of `imports` that
    cannot be imported and each of `finds` that is not installed."""
    problems: list[tuple[str, str]] = []
    for name in imports:
        try:
            importlib.import_module(name)
        except ImportError as error:
            problems.append(((error.name or name).split(".")[0], name))
        except Exception as error:  # a broken install: importing it raised
            problems.append((f"{name} ({type(error).__name__}: {error})", name))
    for name in finds:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            problems.append((name, name))
    return list(dict.fromkeys(problems))


@functools.cache
def _remote_probe() -> Any:
    return ray.remote(probe)


def _line(module: str, who: str, nodes: list[str]) -> str:
    where = f"node {nodes[0]}" if len(nodes) == 1 else f"nodes {', '.join(sorted(nodes))}"
    if who and not who.startswith(("orchestrator", "trainer", module)):
        need = f"{who} imports it"  # the user's file
    else:
        need = "a trial needs it"
    return (
        f"{where}: cannot import {module}{_distribution(module)} ({need}): install it in the "
        "Python that runs Ray on every node"
    )


def _distribution(module: str) -> str:
    """`(pip install NAME)` where the package's name differs from its module's (yaml)."""
    top = module.split(" ")[0]
    names = importlib.metadata.packages_distributions().get(top, [])
    return f" (pip install {names[0]})" if names and names[0].lower() != top.lower() else ""


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
