"""The W&B server, faked for `orchestrate agent` tests; nothing else of wandb is replaced.

The W&B server cannot be reached here. `install` (a Ray worker_process_setup_hook) replaces
only the calls with which wandb's real agent talks to the server: login, the API client, and
the sweep queries (`_sweep_with_runs`, `_register_agent`, `_agent_heartbeat`). The server
hands each agent one run of the sweep's program, `train.py` with the params in
`fake_args.json` in the agent's directory (else FAKE_WANDB_ARGS), then no more (an agent without --count then waits for more, as on a sweep that has ended). Every call is appended to FAKE_WANDB_LOG (JSON lines) for the test to check. The
agent's poll interval is shortened from 5 s to keep the test short.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

SWEEP_CONFIG = "method: grid\ncommand:\n- ${env}\n- ${interpreter}\n- ${program}\n- ${args}\n"


def install() -> None:
    import wandb
    import wandb.apis.public.sweeps as sweeps
    from wandb.sdk import wandb_login
    from wandb.wandb_agent import Agent

    wandb_login._login = lambda **kwargs: True
    wandb.Api = FakeApi
    sweeps._sweep_with_runs = sweep_with_runs
    sweeps._register_agent = register_agent
    sweeps._agent_heartbeat = agent_heartbeat
    Agent.POLL_INTERVAL = 0.2


class FakeApi:
    def __init__(self, *args, **kwargs):
        pass


def _log(call: str, **values) -> None:
    line = {"call": call, "pid": os.getpid(), "time": time.time(), **values}
    with open(os.environ["FAKE_WANDB_LOG"], "a") as handle:
        handle.write(json.dumps(line) + "\n")


def sweep_with_runs(api, sweep_id, specs, *, project=None, entity=None):
    import ray

    resources = ray.get_runtime_context().get_assigned_resources()
    _log(
        "sweep",
        sweep_id=sweep_id,
        entity=os.environ.get("WANDB_ENTITY"),
        project=os.environ.get("WANDB_PROJECT"),
        resources=resources,
        cwd=os.getcwd(),
        wandb_dir=os.environ.get("WANDB_DIR"),
    )
    return {"config": SWEEP_CONFIG}


_agents: list[str] = []  # agents registered in this worker process
_handed_out: set[str] = set()  # agents that got their one run


def register_agent(api, host, *, sweep_id, project=None, entity=None):
    _agents.append(f"agent{os.getpid()}x{len(_agents)}")
    _log("register", host=host, sweep_id=sweep_id, agent_id=_agents[-1])
    return {"id": _agents[-1]}


def agent_heartbeat(api, agent_id, metrics, run_states):
    if agent_id in _handed_out:
        return []
    _handed_out.add(agent_id)
    run_id = f"run-{agent_id}"
    _log("run", agent_id=agent_id, run_id=run_id)
    given = Path("fake_args.json")
    args = json.loads(given.read_text() if given.exists() else os.environ["FAKE_WANDB_ARGS"])
    command = {"type": "run", "id": "c1", "run_id": run_id, "program": "train.py"}
    return [command | {"args": {key: {"value": value} for key, value in args.items()}}]
