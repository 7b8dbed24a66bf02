"""A real PostgreSQL server for the tests: its own cluster (`initdb`) in a temporary folder,
started with `pg_ctl` on a free port of 127.0.0.1, a database per test, stopped at the end.

The server comes from Debian's `postgresql` package (`.ci/run` installs it). PostgreSQL
refuses to run as root: as root, the cluster's folder belongs to the `postgres` user and its
commands run as that user (`runuser`)."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def server_bin() -> Path | None:
    """The folder of `initdb`/`pg_ctl`: Debian's newest, else the PATH's; None when absent."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    if debian:
        return Path(debian[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _major(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster of our own; `url(name)` makes a database and names it."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="orchestrate-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            owner = pwd.getpwnam(self.user)  # KeyError: no such user (the caller says so)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.databases = 0
        self.password = secrets.token_hex(8)

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        argv = [str(self.bindir / command[0]), *command[1:]]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        result = subprocess.run(
            argv, cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)}: {result.stderr or result.stdout}\n{log}")
        return result

    def start(self) -> PostgresServer:
        # A password over TCP, as a real server asks (scram); trust on its own socket only.
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o644)
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", *auth, "--no-sync")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c max_connections=300"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        return self

    def url(self, name: str | None = None) -> str:
        """A new, empty database's URL (Optuna's RDB storage takes it as it is)."""
        import psycopg

        self.databases += 1
        name = name or f"test{self.databases}"
        server = f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"{server}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
