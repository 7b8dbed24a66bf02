"""`orchestrate agent ENTITY/PROJECT/SWEEP_ID --workers N`: W&B sweep agents as Ray tasks.

For a sweep that lives on a W&B server (made with `wandb sweep`): each of N Ray tasks, with
the resources of one trial, calls `wandb.agent`, which asks the server for params and runs
the sweep's program as `wandb agent` does (or, with `--trainer`, the shared trainer
`python -m trainer --preset BASE`, which reads the params from `wandb.config`). The W&B
server chooses the params, early-terminates runs and keeps the sweep's state; Ray only places
the agents. `--count C` ends each agent after C runs.

Ctrl-C (or SIGTERM, as a batch scheduler sends it) is passed on to the agents as W&B's agent
takes it: once, the agents stop asking for runs and wait for the running ones; twice, the runs
get SIGTERM; three times, the agent tasks are killed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError

SWEEP_PATH = re.compile(r"^([\w.-]+)/([\w.-]+)/([A-Za-z0-9]+)$")
POLL_SECONDS = 1.0


def parse_sweep_path(text: str) -> tuple[str, str, str]:
    """ENTITY/PROJECT/SWEEP_ID, as `wandb sweep` prints it."""
    match = SWEEP_PATH.match(text.strip())
    if not match:
        raise UserError(
            f"sweep {text!r}: expected ENTITY/PROJECT/SWEEP_ID (as `wandb sweep` prints it, "
            "e.g. my-team/my-project/abc123de)"
        )
    return match.group(1), match.group(2), match.group(3)


def agent_task(
    entity: str,
    project: str,
    sweep_id: str,
    count: int | None,
    trainer_base: str | None,
    wandb_dir: str,
    cwd: str,
) -> dict[str, Any]:
    """One W&B agent: the body of a Ray task. Returns where it ran."""
    import wandb

    if Path(cwd).is_dir():  # the sweep's program is found relative to where the user started
        os.chdir(cwd)
    Path(wandb_dir).mkdir(parents=True, exist_ok=True)
    os.environ["WANDB_DIR"] = wandb_dir
    function = None
    if trainer_base is not None:

        def function() -> None:
            """The shared trainer as the run's program; it reads the agent's environment."""
            command = [sys.executable, "-m", "trainer", "--preset", trainer_base]
            subprocess.run(command, env=dict(os.environ), check=False)

    wandb.agent(sweep_id, function=function, entity=entity, project=project, count=count)
    return {"node": socket.gethostname(), "pid": os.getpid()}


def run_agents(
    sweep_path: str,
    *,
    workers: int,
    count: int | None = None,
    cpus: float = 1,
    gpus: float | None = None,
    trainer_base: str | None = None,
    runs_root: str | Path = "runs",
    address: str | None = None,
) -> int:
    """Start `workers` agents on Ray and wait for them: 0 when they ended, 1 when one failed,
    130 on Ctrl-C."""
    import ray

    entity, project, sweep_id = parse_sweep_path(sweep_path)
    if workers < 1:
        raise UserError(f"--workers must be at least 1 (got {workers})")
    started = not ray.is_initialized()
    if started:
        address = address or os.environ.get("RAY_ADDRESS")
        kwargs: dict[str, Any] = {"log_to_driver": True, "configure_logging": False}
        ray.init(address=address or "local", **kwargs)  # never a `ray start` head unasked
    try:
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        wandb_dir = str((Path(runs_root) / f"agent-{sweep_id}").resolve())
        task = ray.remote(agent_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        args = (entity, project, sweep_id, count, trainer_base, wandb_dir, os.getcwd())
        refs = [task.remote(*args) for _ in range(workers)]
        print(
            f"{workers} W&B agent(s) for {entity}/{project}/{sweep_id}, {cpus:g} cpu and "
            f"{gpus:g} gpu each; runs under {wandb_dir}",
            flush=True,
        )
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            return _wait(refs)
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        if started:
            ray.shutdown()


def _wait(refs: list[Any]) -> int:
    """Wait for the agents, passing each Ctrl-C on to them (see the module doc)."""
    import ray

    pending, interrupts, failed = list(refs), 0, False
    while pending:
        try:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
            for ref in done:
                failed |= not _report(ref)
        except KeyboardInterrupt:
            interrupts += 1
            steps = {1: "agents finish their runs and stop", 2: "runs get SIGTERM"}
            print(f"\nstopping: {steps.get(interrupts, 'killing the agents')}", flush=True)
            for ref in pending:
                ray.cancel(ref, force=interrupts >= 3)
    return 130 if interrupts else int(failed)


def _report(ref: Any) -> bool:
    """Say how an agent ended; False if it failed."""
    import ray

    try:
        where = ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        print("agent cancelled", flush=True)
        return True
    except ray.exceptions.RayTaskError as error:
        print(f"agent failed: {error.cause!r}", file=sys.stderr, flush=True)
        return isinstance(error.cause, KeyboardInterrupt)
    print(f"agent on {where['node']} (pid {where['pid']}) ended", flush=True)
    return True
