"""Service mode, the client side: submit a sweep to a Ray cluster, then watch, cancel and pull
it from any machine that reaches the cluster's dashboard (`http://HEAD:8265`).

Everything goes through Ray's Jobs API, so the client needs no Ray of its own running and no
connection but HTTP:
- a sweep is a Ray Job (`orchestrate-<sweep>-<hex>`, metadata `orchestrate=sweep`,
  `sweep=<name>`, `runs=<root>`) whose entrypoint, `orchestrator.service.host serve`, runs
  the controller on the head node; its runtime environment (`run.shipping`) carries
  orchestrate, the trainer and the spec's directory (the spec and any program next to it),
  so the cluster's Python need not have orchestrate; the controller probes every node for
  what a trial imports before the sweep starts, and a failure is the job's reason;
- the sweep's store and runs live under an absolute runs root on the head node
  (default `~/orchestrate/runs`), so they outlive the job and every controller restart;
- `status`, `ls` and `pull` run a short query job on the head node that reads that store
  (`orchestrator.service.host query`) and prints its answer into the job's log;
- `cancel` stops the sweep's job: its driver asks the controller to stop, the running trials
  checkpoint and are recorded as interrupted. `submit` of the same spec again resumes it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import re
import secrets
import shlex
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from orchestrator.errors import UserError
from orchestrator.run import auth, shipping
from orchestrator.service.host import JSON_MARK, STARTED_MARK, TAR_MARK

DEFAULT_CLUSTER_RUNS = "~/orchestrate/runs"
JOB_ENV = {
    "PYTHONUNBUFFERED": "1",
    "RAY_DEDUP_LOGS": "0",  # every controller line in the job's log, none folded
    "RAY_COLOR_PREFIX": "0",
    "RAY_JOB_STOP_WAIT_TIME_S": "300",  # time for running trials to checkpoint on cancel
}
QUERY_TIMEOUT = 120.0
START_TIMEOUT = 300.0  # uploading the spec's directory and a cold head can take a while
LIVE = ("PENDING", "RUNNING")


@dataclass
class Submission:
    name: str
    job_id: str
    runs_root: str
    started: bool = False  # its controller runs (else it was still starting when we left)


def connect(address: str) -> Any:
    """A Jobs API client for the dashboard at `address`, or a UserError saying why not."""
    from ray.job_submission import JobSubmissionClient

    if address.startswith("ray://"):
        raise UserError(
            f"{address}: service commands talk to the Ray dashboard, e.g. http://HEAD:8265"
        )
    if "://" not in address:
        address = "http://" + address
    _quiet_uploads()
    try:  # the token where Ray keeps it, with no RAY_AUTH_MODE to set
        return JobSubmissionClient(address, headers=auth.http_headers())
    except Exception as error:  # ConnectionError, AuthenticationError, version mismatch
        raise auth.http_failure(address, error) or UserError(
            f"{address}: cannot reach the Ray Jobs API: {_first_line(error)}"
        ) from None


def _quiet_uploads() -> None:
    """Ray logs each package it uploads (orchestrate, the trainer, the spec's directory) at
    INFO on the client's terminal; its warnings (a package near the size limit) still show."""
    for name in ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging"):
        logging.getLogger(name).setLevel(logging.WARNING)


def submit(address: str, spec_path: str, overrides: list[str], runs_root: str) -> Submission:
    """Start a sweep on the cluster and return at once; its controller runs on the head node."""
    from orchestrator.spec import load_spec

    spec = load_spec(spec_path, overrides)  # every spec error here, before anything is sent
    if not runs_root.startswith(("/", "~")):
        raise UserError(f"--runs {runs_root}: give an absolute path on the cluster's head node")
    if spec.storage and "://" not in spec.storage and not spec.storage.startswith(("/", "~")):
        raise UserError(f"{spec.path}: storage: give an absolute path or a URL for a cluster")
    client = connect(address)
    running = [job for job in _sweep_jobs(client, spec.name) if job.status.name in LIVE]
    if running:
        raise UserError(
            f"sweep {spec.name} is already running on {address} (job {running[0].submission_id}); "
            f"watch it with `orchestrate status {spec.name} --address {address}`"
        )
    spec_file = Path(spec.path).resolve()
    job_id = f"orchestrate-{spec.name}-{secrets.token_hex(3)}"
    entrypoint = shlex.join(
        ["python", "-m", "orchestrator.service.host", "serve", spec_file.name, "--runs", runs_root]
        + list(overrides)
    )
    try:
        client.submit_job(
            entrypoint=entrypoint,
            submission_id=job_id,
            # orchestrate and the spec's directory travel with the job: the cluster's
            # Python needs Ray, torch, optuna and wandb, not orchestrate
            runtime_env=shipping.runtime_env(spec_file.parent, JOB_ENV),
            metadata={"orchestrate": "sweep", "sweep": spec.name, "runs": runs_root},
        )
    except (RuntimeError, ValueError) as error:  # the upload too big, the cluster refused
        raise UserError(
            f"{spec.path}: the cluster refused the sweep: {_first_line(error)}"
        ) from None
    submission = Submission(spec.name, job_id, runs_root)
    submission.started = _wait_until_started(client, submission, address)
    return submission


def _wait_until_started(client: Any, submission: Submission, address: str) -> bool:
    """Wait until the sweep's controller runs (True), or False after START_TIMEOUT; a job that
    ends before its controller has started is a UserError with the job's reason."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        status = client.get_job_status(submission.job_id)
        text = client.get_job_logs(submission.job_id)
        if STARTED_MARK in text or status.name == "SUCCEEDED":
            return True
        if status.is_terminal():
            reason = _failure_reason(text, client.get_job_info(submission.job_id).message)
            raise UserError(
                f"sweep {submission.name} failed to start on {address} "
                f"(job {submission.job_id} {status.name}): {reason}"
            )
        time.sleep(0.5)
    return False


def _failure_reason(log: str, message: str | None) -> str:
    """Why a sweep's job ended: the controller's errors when it said them (`sweep X ended:
    {...}`), else the log's last line (a traceback's), else Ray's message."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("sweep ") and " ended: {" in line:
            errors = json.loads(line.partition(" ended: ")[2]).get("error")
            if errors:
                return "; ".join(errors)
    return lines[-1] if lines else (message or "no reason given").strip()


def overviews(address: str, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Where each named sweep (default: every sweep submitted) stands, read on the cluster;
    each overview also carries its latest job under "job"."""
    client = connect(address)
    latest = _latest_jobs(client)
    for name in names or []:
        if name not in latest:
            raise _unknown(name, address)
    chosen = [latest[name] for name in names] if names else list(latest.values())
    if not chosen:
        return []
    pairs = [[job.metadata["sweep"], job.metadata["runs"]] for job in chosen]
    answer = _query(client, ["status", json.dumps(pairs)])
    for item, job in zip(answer["json"], chosen, strict=True):
        item["job"] = _job_summary(job)
    return answer["json"]


def logs(address: str, name: str, follow: bool, out: TextIO = sys.stdout) -> None:
    """Print the sweep's job log (the controller's lines); with `follow`, until the job ends."""
    client = connect(address)
    job = _latest_job(client, name, address)
    if not follow:
        out.write(client.get_job_logs(job.submission_id))
        out.flush()
        return

    async def tail() -> None:
        async for text in client.tail_job_logs(job.submission_id):
            out.write(text)
            out.flush()

    asyncio.run(tail())


def cancel(address: str, name: str, timeout: float = 600.0) -> str:
    """Stop the sweep: running trials checkpoint and are recorded interrupted. Returns the job's
    final status (waits for it, so the store is consistent when this returns)."""
    client = connect(address)
    job = _latest_job(client, name, address)
    if job.status.name not in LIVE:
        return job.status.name
    client.stop_job(job.submission_id)
    deadline = time.monotonic() + timeout
    while (status := client.get_job_status(job.submission_id)).name in LIVE:
        if time.monotonic() > deadline:
            raise UserError(f"sweep {name}: job {job.submission_id} still {status.name}")
        time.sleep(0.25)
    return status.name


def pull(address: str, name: str, runs: Path, checkpoints: bool = False) -> Path:
    """Copy the sweep's directory from the head node to `runs/<name>` here (checkpoints only
    when asked: from the spec's `checkpoints:` store when it has one); its paths are rewritten
    so `status` and `report` work on the copy."""
    client = connect(address)
    job = _latest_job(client, name, address)
    args = ["pack", name, job.metadata["runs"]] + (["--checkpoints"] if checkpoints else [])
    answer = _query(client, args)
    if "missing" in answer["json"]:
        raise UserError(f"sweep {name}: {answer['json']['missing']}")
    data = base64.b64decode("".join(answer["tar"]))
    runs.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        archive.extractall(runs, filter="data")
    run_dir = (runs / name).resolve()
    relocate(run_dir, answer["json"]["run_dir"])
    if checkpoints:  # a sweep with `checkpoints:` keeps them in its store, not on the head
        from orchestrator.service.checkpoints import pull_checkpoints

        pull_checkpoints(run_dir)
    return run_dir


def relocate(run_dir: Path, old_run_dir: str) -> None:
    """Point a copied sweep's records (sweep file, journal store) at where it lies now."""
    from orchestrator import store

    old, new = json.dumps(old_run_dir)[1:-1], json.dumps(str(run_dir))[1:-1]
    if old == new:
        return
    pattern = re.compile(re.escape(old) + r'(?=["/\\])')
    files = [run_dir / store.SWEEP_FILE, run_dir / store.JOURNAL_NAME]
    for path in files:
        if path.exists():
            path.write_text(pattern.sub(new.replace("\\", "\\\\"), path.read_text()))


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ---------------------------------------------------------------- jobs


def _sweep_jobs(client: Any, name: str | None = None) -> list[Any]:
    jobs = [
        job
        for job in client.list_jobs()
        if (job.metadata or {}).get("orchestrate") == "sweep"
        and (name is None or job.metadata.get("sweep") == name)
    ]
    return sorted(jobs, key=lambda job: job.start_time or 0)


def _latest_jobs(client: Any) -> dict[str, Any]:
    """The latest job of every sweep submitted to the cluster, by sweep name."""
    return {job.metadata["sweep"]: job for job in _sweep_jobs(client)}


def _latest_job(client: Any, name: str, address: str) -> Any:
    jobs = _sweep_jobs(client, name)
    if not jobs:
        raise _unknown(name, address)
    return jobs[-1]


def _unknown(name: str, address: str) -> UserError:
    return UserError(
        f"{name}: no sweep of that name was submitted to {address}; "
        f"`orchestrate ls --address {address}` lists them"
    )


def _job_summary(job: Any) -> dict[str, Any]:
    return {
        "id": job.submission_id,
        "status": job.status.name,
        "started_at": (job.start_time or 0) / 1000 or None,
        "ended_at": (job.end_time or 0) / 1000 or None,
        "message": job.message,
    }


def _query(client: Any, args: list[str], timeout: float = QUERY_TIMEOUT) -> dict[str, Any]:
    """Run `orchestrator.service.host query ARGS` as a short job on the head node; return its
    JSON answer and any tar lines."""
    job_id = f"orchestrate-query-{secrets.token_hex(4)}"
    entrypoint = shlex.join(["python", "-m", "orchestrator.service.host", "query", *args])
    client.submit_job(
        entrypoint=entrypoint,
        submission_id=job_id,
        metadata={"orchestrate": "query"},
        runtime_env=shipping.runtime_env(),
    )
    deadline = time.monotonic() + timeout
    while (status := client.get_job_status(job_id)).name in LIVE:
        if time.monotonic() > deadline:
            client.stop_job(job_id)
            raise UserError(f"the cluster did not answer within {timeout:.0f} s (job {job_id})")
        time.sleep(0.1)
    text = client.get_job_logs(job_id)
    client.delete_job(job_id)
    answer: dict[str, Any] = {"json": None, "tar": []}
    for line in text.splitlines():
        if line.startswith(JSON_MARK):
            answer["json"] = json.loads(line[len(JSON_MARK) :])
        elif line.startswith(TAR_MARK):
            answer["tar"].append(line[len(TAR_MARK) :])
    if status.name != "SUCCEEDED" or answer["json"] is None:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise UserError(f"the cluster could not answer (job {job_id} {status.name}): {tail}")
    return answer
