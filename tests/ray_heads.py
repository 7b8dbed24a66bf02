"""Ray heads for the cluster tests, as a user's cluster would be: a `ray start --head` of its
own (its own process group, RAY_TMPDIR and HOME, every port given), run by a Python that has
Ray, torch, optuna and wandb but not orchestrate (`bare_python`), with or without token
authentication; and the CLI run in a process of its own from a folder outside the project.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conftest import wait_for

VENV_BIN = Path(sys.executable).parent
HEAD_PORTS = (
    "ray-client-server-port",
    "node-manager-port",
    "object-manager-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "metrics-export-port",
    "runtime-env-agent-port",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_bare_python(where: Path) -> Path:
    """A venv whose Python sees this project's dependencies but not orchestrate: a
    `deps.pth` naming our site-packages as a plain path, so its .pth files (the editable
    install of orchestrate among them) are not run. Returns its `bin/python`."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    bare_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = next(p for p in site.getsitepackages() if Path(p, "ray").is_dir())
    Path(bare_site, "deps.pth").write_text(ours + "\n")
    return python


@dataclass
class Head:
    dashboard: str  # http://127.0.0.1:PORT, for the service commands
    gcs: str  # 127.0.0.1:PORT, for `orchestrate SPEC --address`
    temp_dir: Path
    log: Path


@contextlib.contextmanager
def ray_head(python: Path, home: Path, token_auth: bool = False) -> Iterator[Head]:
    """A head node run by `python` with HOME=`home` (token authentication is on when
    `home/.ray/auth_token` exists and `token_auth`, as Ray 2.60 does it); stopped by killing
    its process group, never with `ray stop`."""
    base = Path(tempfile.mkdtemp(prefix="rh", dir="/tmp"))  # short: Ray's socket paths
    temp_dir = base / "ray"
    temp_dir.mkdir()
    dashboard, gcs = free_port(), free_port()
    command = [
        str(python),
        "-c",
        "import sys; from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()",
        *head_arguments(temp_dir, dashboard, gcs),
    ]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RAY_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        HOME=str(home),
        RAY_TMPDIR=str(base),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_UV_RUN_RUNTIME_ENV="0",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        PATH=f"{python.parent}{os.pathsep}{os.environ['PATH']}",  # a job's `python` is this one
    )
    if not token_auth:
        env["RAY_AUTH_MODE"] = "disabled"
    log_path = temp_dir / "head.log"
    url = f"http://127.0.0.1:{dashboard}"
    try:
        with head_process(command, env, log_path, url, cwd=base):
            yield Head(url, f"127.0.0.1:{gcs}", temp_dir, log_path)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def head_arguments(temp_dir: Path | str, dashboard: int, gcs: int) -> list[str]:
    """`ray start --head` on 127.0.0.1 with 2 CPUs, its own temp dir and every port given."""
    return [
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--port={gcs}",
        "--num-cpus=2",
        "--num-gpus=0",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
    ] + [f"--{option}={free_port()}" for option in HEAD_PORTS]


@contextlib.contextmanager
def head_process(
    command: list[str], env: dict[str, str], log_path: Path, url: str, cwd: Path | None = None
) -> Iterator[None]:
    """Run a head's command in its own process group until its Jobs API answers at `url`;
    stop it after by killing that group, never with `ray stop`."""
    log = open(log_path, "w")  # noqa: SIM115
    head = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for(lambda: _jobs_api_up(url) or head.poll() is not None, timeout=180)
        assert head.poll() is None, log_path.read_text()[-3000:]
        yield
    finally:
        head.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # anything of ours still there
        log.close()


def _jobs_api_up(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/api/version", timeout=2).read()
    except urllib.error.HTTPError:  # it answers: 401 where it wants a token
        return True
    except OSError:
        return False
    return True


def orchestrate(
    *args: str, cwd: Path, home: Path | None = None, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    """The CLI in a process of its own, started in `cwd` (not the project: nothing of it on
    a worker's path but what is shipped), with no RAY_* variable but those in `env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    environ.update(
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_UV_RUN_RUNTIME_ENV="0",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
    )
    if home is not None:
        environ["HOME"] = str(home)
    environ.update(env)
    command = [str(VENV_BIN / "python"), "-m", "orchestrator.cli", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=environ
    )
