"""`wandb: {mode: online}` on a machine with no route to the W&B server (a compute node
without internet, wandb#8183): found out once, early, and the sweep logs offline.

The server is the one boundary we fake: a socket on 127.0.0.1 that accepts connections and
never answers, as a black-holed route looks to a client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from conftest import trials_of, write_spec
from optuna.trial import TrialState

SPEC = """
    name: online
    method: grid
    program: sweep_programs:noop
    metric: {name: loss, goal: minimize}
    wandb: {mode: online, project: p}
    parameters:
      x: {values: [1.0, 2.0]}
"""


def test_an_unreachable_server_is_found_once_and_the_sweep_logs_offline(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # connections complete in the backlog; nothing is ever read or sent
    try:
        env = dict(
            os.environ,
            WANDB_BASE_URL=f"http://127.0.0.1:{silent.getsockname()[1]}",
            WANDB_API_KEY="x" * 40,
        )
        env.pop("WANDB_MODE", None)
        runs = tmp_path / "runs"
        command = [sys.executable, "-m", "orchestrator.cli", str(write_spec(tmp_path, SPEC))]
        done = subprocess.run(
            command + ["--runs", str(runs), "--num-cpus", "2"],
            capture_output=True,
            text=True,
            env=env,
            timeout=150,  # two trials and a summary run at ~90 s per wandb.init would not fit
        )
    finally:
        silent.close()
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.count("this sweep logs offline") == 1, out  # said once, not per run
    assert f"wandb sync {runs / 'online'}/wandb/offline-run-*" in out
    assert "(offline: online asked, the server cannot be reached)" in " ".join(out.split())
    assert all(t.state == TrialState.COMPLETE for t in trials_of(runs / "online"))
    offline_runs = list((runs / "online" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 3  # two trials and the summary run, all there to sync
