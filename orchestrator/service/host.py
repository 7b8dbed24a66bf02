"""Service mode, the cluster side: what `orchestrate submit` starts on the Ray head node.

`python -m orchestrator.service.host serve SPEC --runs ROOT [overrides]` is the entrypoint of
a sweep's Ray Job. It starts the sweep's controller as a detached named actor
(`SweepService`, pinned to the head node, `max_restarts=-1`) and waits for it, so the job's
logs are the controller's lines and stopping the job (`orchestrate cancel`, `ray job stop`)
stops the sweep cleanly. The actor runs the controller in a thread of its constructor, so
when its process dies Ray starts it again and the new controller takes the sweep's lock and
resumes from the store (adopting the RUNNING trials from their checkpoints).

`python -m orchestrator.service.host query ...` answers the client's questions from the
store on the head node's disk (a short Ray Job each): `status` prints the overviews as JSON,
`pack` a tar.gz of a sweep directory as base64 lines. Both print after a marker so the
client can pick them out of the job's log.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import sys
import tarfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from orchestrator.run.display import PlainDisplay

NAMESPACE = "orchestrate"
JSON_MARK = "ORCHESTRATE-JSON "
TAR_MARK = "ORCHESTRATE-TAR "
STARTED_MARK = "ORCHESTRATE-STARTED"  # the controller runs: `submit` may return
CONTROLLER_LOG = "controller.log"
COLLECT_SECONDS = 30.0  # how long a finished controller waits for its job to collect it
SKIPPED_WHEN_PACKING = (".lock", ".tmp")  # live lock files; half-written files
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")


def actor_name(sweep: str) -> str:
    return f"sweep:{sweep}"


class SweepService:
    """The sweep's controller as a Ray actor: it starts in the constructor, so a restart by
    Ray resumes the sweep with nobody asking."""

    def __init__(self, spec_file: str, overrides: list[str], runs_root: str):
        self.spec_file, self.overrides, self.runs_root = spec_file, overrides, runs_root
        self.controller: Any = None
        self.outcome: dict[str, Any] | None = None
        self.finished, self.collected = threading.Event(), threading.Event()
        threading.Thread(target=self._run, name="controller", daemon=True).start()

    def stop(self) -> None:
        """Stop dispatching; running trials checkpoint and are recorded as interrupted."""
        while self.controller is None and not self.finished.is_set():
            time.sleep(0.05)
        if self.controller is not None:
            self.controller.request_stop()

    def wait(self, timeout: float) -> dict[str, Any] | None:
        """The outcome once the sweep has ended, else None after `timeout` seconds."""
        if not self.finished.wait(timeout):
            return None
        self.collected.set()
        return self.outcome

    def _run(self) -> None:
        from orchestrator.errors import UserError
        from orchestrator.results import report, summary
        from orchestrator.run.controller import Controller
        from orchestrator.spec import load_spec

        outcome: dict[str, Any] = {"error": None, "interrupted": False}
        try:
            spec = load_spec(self.spec_file, self.overrides)
            run_dir = Path(self.runs_root, spec.name)
            run_dir.mkdir(parents=True, exist_ok=True)
            display = _AnnouncingDisplay(_Tee(sys.stdout, run_dir / CONTROLLER_LOG))
            print(f"controller pid {os.getpid()} on {os.uname().nodename}", file=display.stream)
            self.controller = Controller(
                spec, runs_root=self.runs_root, display=display, overrides=self.overrides
            )
            ended = self.controller.run()
            sweep = summary.summarize(ended.run_dir)
            if not ended.interrupted:  # as `orchestrate run` ends: plots, report.md, summary run
                report.write_report(ended.run_dir, sweep)
            outcome.update(run_dir=str(ended.run_dir), counts=ended.counts)
            outcome["interrupted"] = ended.interrupted
        except UserError as error:
            outcome["error"] = error.lines
        except Exception as error:
            traceback.print_exc()
            outcome["error"] = [f"{type(error).__name__}: {error}"]
        self.outcome = outcome
        self.finished.set()
        if not self.collected.wait(COLLECT_SECONDS):  # the job is gone: end for good
            _kill_self()


class _AnnouncingDisplay(PlainDisplay):
    """One line per trial event; and once the controller runs, a mark in the job's log that
    tells `submit` the sweep has started."""

    def start(self, title: str, total: int | None, done: int, metric: str = "metric") -> None:
        super().start(title, total, done, metric)
        print(STARTED_MARK, file=self.stream, flush=True)


class _Tee:
    """A text stream writing to stdout (the job's log) and to the sweep's controller.log."""

    def __init__(self, stream: Any, path: Path):
        self.stream, self.file = stream, path.open("a", buffering=1)

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.stream.flush()


def _kill_self() -> None:
    import ray

    ray.kill(ray.get_runtime_context().current_actor, no_restart=True)


def serve(spec_file: str, overrides: list[str], runs_root: str) -> int:
    """The sweep job's entrypoint: start the controller actor, wait for it, stop it on SIGTERM."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from orchestrator.service.host import SweepService  # by module, not as __main__'s copy
    from orchestrator.spec import load_spec

    name = load_spec(spec_file, overrides).name
    ray.init(log_to_driver=True)
    stop_asked = threading.Event()  # `orchestrate cancel` / `ray job stop` send SIGTERM
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_asked.set())  # after Ray's own
    _end_finished_service(name)
    service = (
        ray.remote(SweepService)
        .options(
            name=actor_name(name),
            namespace=NAMESPACE,
            lifetime="detached",
            max_restarts=-1,
            max_concurrency=4,
            num_cpus=0,
            # the store lives on this node's disk: keep the controller (and its restarts) here
            scheduling_strategy=NodeAffinitySchedulingStrategy(
                ray.get_runtime_context().get_node_id(), soft=False
            ),
        )
        .remote(spec_file, overrides, os.path.expanduser(runs_root))
    )
    stop_sent = False
    while True:
        if stop_asked.is_set() and not stop_sent:
            print("stop requested: running trials checkpoint and stop", flush=True)
            service.stop.remote()
            stop_sent = True
        try:
            outcome = ray.get(service.wait.remote(1.0))
        except ray.exceptions.RayActorError as error:
            if not _alive(name):
                print(f"the controller is gone: {error}", flush=True)
                return 1
            time.sleep(1.0)  # Ray is restarting it
            continue
        if outcome is not None:
            break
    ray.kill(service, no_restart=True)
    for line in outcome["error"] or []:
        print(line, flush=True)
    print(f"sweep {name} ended: {json.dumps(outcome)}", flush=True)
    return 2 if outcome["error"] else 0


def _alive(name: str) -> bool:
    import ray

    try:
        ray.get_actor(actor_name(name), namespace=NAMESPACE)
    except ValueError:
        return False
    return True


def _end_finished_service(name: str) -> None:
    """A controller of an earlier job that ended but was never collected goes now; a live
    one means the sweep runs already."""
    import ray

    try:
        old = ray.get_actor(actor_name(name), namespace=NAMESPACE)
    except ValueError:
        return
    if ray.get(old.wait.remote(0.0)) is None:
        raise SystemExit(f"sweep {name} is already running on this cluster")
    ray.kill(old, no_restart=True)


# ---------------------------------------------------------------- queries


def status(sweeps: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The overview of each (name, runs root) sweep, or why there is none yet."""
    from orchestrator.errors import UserError
    from orchestrator.results import summary

    overviews = []
    for name, root in sweeps:
        run_dir = Path(os.path.expanduser(root), name)
        try:
            overviews.append(summary.overview(run_dir))
        except UserError:  # the job has not started the controller yet
            missing = f"{name}  no store yet at {run_dir}"
            overviews.append({"name": name, "run_dir": str(run_dir), "missing": missing})
    return overviews


def pack(run_dir: Path, checkpoints: bool) -> bytes:
    """A tar.gz of a sweep directory, without lock files (and checkpoints unless asked).

    The journal is cut at its last full line: the controller may be appending to it now.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(run_dir.rglob("*")):
            if not path.is_file() or path.name.endswith(SKIPPED_WHEN_PACKING):
                continue
            if not checkpoints and path.name.endswith(CHECKPOINT_SUFFIXES):
                continue
            data = path.read_bytes()
            if path.name.endswith(".journal"):
                data = data[: data.rfind(b"\n") + 1]
            info = tarfile.TarInfo(str(Path(run_dir.name, path.relative_to(run_dir))))
            info.size, info.mtime = len(data), int(path.stat().st_mtime)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def query(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="orchestrator.service.host query")
    sub = parser.add_subparsers(dest="what", required=True)
    status_parser = sub.add_parser("status")
    status_parser.add_argument("sweeps", help='JSON list of ["name", "runs root"]')
    pack_parser = sub.add_parser("pack")
    pack_parser.add_argument("name")
    pack_parser.add_argument("runs")
    pack_parser.add_argument("--checkpoints", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "status":
        overviews = status([tuple(pair) for pair in json.loads(args.sweeps)])
        print(JSON_MARK + json.dumps(overviews, default=str), flush=True)
        return 0
    run_dir = Path(os.path.expanduser(args.runs), args.name)
    if not run_dir.is_dir():
        print(JSON_MARK + json.dumps({"missing": f"{run_dir}: no such sweep directory"}))
        return 0
    data = base64.b64encode(pack(run_dir, args.checkpoints)).decode()
    print(JSON_MARK + json.dumps({"run_dir": str(run_dir), "bytes": len(data)}))
    chunk = 1 << 16
    for start in range(0, len(data), chunk):
        sys.stdout.write(TAR_MARK + data[start : start + chunk] + "\n")
    sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["query"]:
        return query(argv[1:])
    parser = argparse.ArgumentParser(prog="orchestrator.service.host serve")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("spec")
    parser.add_argument("--runs", required=True)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    return serve(args.spec, args.overrides, args.runs)


if __name__ == "__main__":
    sys.exit(main())
