"""What a controller sets up before its loop: the sweep directory's lock, Ray, the study
(with `sweep.json` saying how to reopen it), and how many trials fit on the cluster."""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import secrets
import socket
import subprocess
import warnings
from pathlib import Path
from typing import Any, TextIO

import optuna
import ray

from orchestrator import store
from orchestrator.errors import UserError
from orchestrator.plan import rounds, search
from orchestrator.plan.expand import PlannedTrial
from orchestrator.run import auth, probe, reaper, shipping
from orchestrator.spec.model import SweepSpec


def acquire_lock(run_dir: Path) -> TextIO:
    """Take the sweep directory's controller lock (an flock: released when the process dies,
    however it dies); another live controller there, or a place that cannot hold the sweep
    (`--runs` a file, a folder we may not write), is a clear error before anything runs."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir / store.LOCK_FILE, "a+")  # noqa: SIM115 (held while it runs)
    except OSError as error:
        raise UserError(
            f"{error.filename or run_dir}: cannot write the sweep's folder here "
            f"({error.strerror or error}); give --runs a folder you can write to"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise UserError(
            f"{run_dir}: another orchestrate (pid {pid}) is running this sweep; "
            f"watch it with `orchestrate status {run_dir}`"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def release_lock(handle: TextIO) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


_watcher: subprocess.Popen | None = None  # kills our local Ray's leftovers if we are killed


def start_ray(
    address: str | None,
    num_cpus: float | None,
    num_gpus: float | None,
    spec: SweepSpec | None = None,
    spec_dir: str | None = None,
) -> bool:
    """Join the cluster at `address` (or $RAY_ADDRESS), else start a local Ray with this
    machine's CPUs. Returns whether we started it (and so shut it down after).

    Joining, the token is sent where Ray keeps one (`run.auth`); with a `spec`, orchestrate
    and the spec's directory are shipped with the job (`run.shipping`) and every node is
    probed for what a trial imports (`run.probe`), as they are in a service job that shipped
    them (Ray is already up there). `spec_dir`: the folder the spec's program is found in
    (the controller's; for a sweep's copy of its spec, the original's)."""
    shipped_dir = Path(spec_dir) if spec_dir and Path(spec_dir).is_dir() else None
    if ray.is_initialized():
        if spec is not None and shipping.shipped_here():
            _probe(spec, shipped_dir)
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address:
        check_reachable(address)
        auth.join_mode(address)  # a token where Ray keeps it, when the cluster wants one
        env = shipping.runtime_env(shipped_dir) if spec is not None else None
        try:
            ray.init(address=address, runtime_env=env, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(f"cannot join the Ray cluster at {address}: {reason}") from None
        if spec is not None:
            try:
                _probe(spec, shipped_dir)
            except BaseException:
                ray.shutdown()
                raise
    else:
        # Ray announces, on every start, that token authentication is on: not our user's news.
        logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
        reaper.mark_descendants()
        try:
            ray.init(
                address="local",  # our own, even where a `ray start` head runs: join if asked
                num_cpus=num_cpus if num_cpus is not None else os.cpu_count(),
                num_gpus=num_gpus,
                include_dashboard=False,
                **kwargs,
            )
        except BaseException:
            reaper.unmark()  # no watcher will follow: what this process starts next is not ours
            raise
        global _watcher
        _watcher = reaper.watch(os.getpid())
    return True


def _probe(spec: SweepSpec, spec_dir: Path | None) -> None:
    nodes, seconds = probe.check_nodes(spec, spec_dir)
    print(f"{nodes} node(s) can import what a trial needs (probed in {seconds:.1f} s)", flush=True)


def stop_ray() -> None:
    """Shut down the Ray that `start_ray` started, and its watcher."""
    global _watcher
    ray.shutdown()
    if _watcher is not None:
        reaper.stop_watching(_watcher)
        _watcher = None


def open_study(
    spec: SweepSpec,
    run_dir: Path,
    plan: list[PlannedTrial],
    overrides: list[str],
    total: int | None,
) -> tuple[optuna.Study, str]:
    """Create or load the sweep's study, record how to reopen it (`sweep.json`, a copy of
    the spec), and enqueue the plan's points not yet in it. Returns the study and the
    sweep's uid (it makes wandb run ids unique)."""
    metric = spec.metric.name if spec.metric else None
    goals = [m.goal for m in spec.objectives] or ["minimize"]  # one per objective
    plan_signature = [[p.params, p.seed, p.ablation] for p in plan]
    known = None
    if (run_dir / store.SWEEP_FILE).exists():
        known = store.read_sweep_file(run_dir)
        if known.plan not in (None, store_json(plan_signature)):
            raise UserError(
                f"{spec.path}: the plan differs from the one {run_dir} was started "
                f"with; give the sweep a new `name:` or delete {run_dir}"
            )
        changed = changed_keys(known.trial_config, trial_config(spec))
        if changed:
            raise UserError(
                f"{spec.path}: {'; '.join(changed)}: changed since {run_dir} was started, so "
                "its trials would not be alike; undo the change, or give the sweep a new "
                f"`name:` (or delete {run_dir})"
            )
    uid = (known.uid if known else "") or secrets.token_hex(4)  # makes wandb run ids unique
    study_name = spec.study_name or spec.name
    storage = store.open_storage(spec.storage, run_dir)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=goals,
        sampler=search.make_sampler(spec),
        pruner=search.make_pruner(spec),
        load_if_exists=True,
    )
    added = rounds.read_rounds(study.user_attrs)
    plan = rounds.full_plan(spec, added, plan)  # with the seeds adaptive seeds added
    problem = store.attach_problem(study, goals, [p.params for p in plan])
    if problem:
        raise UserError(f"{spec.path}: study {study_name!r} {problem}")
    if study.metric_names is None and not study.get_trials(deepcopy=False):
        label_study(study, spec)
    spec_copy = run_dir / "spec.yaml"
    if not spec_copy.exists():
        spec_copy.write_text(Path(spec.path).read_text())
    sweep = store.SweepFile(
        name=spec.name,
        method=spec.method,
        metric=metric,
        goal=goals[0],
        spec_path=str(Path(spec.path).resolve()),
        spec_copy=spec_copy.name,  # paths in the sweep's folder are relative to it
        overrides=list(overrides),
        storage=store.within_sweep(store.storage_label(spec.storage, run_dir), run_dir),
        study_name=study_name,
        run_dir=str(run_dir),
        plan=store_json(plan_signature),
        total=len(plan) if added else total,
        spec_hash=spec.spec_hash,
        trial_config=trial_config(spec),
        uid=uid,
        **store.versions.for_start(known and known.versions, spec.storage, run_dir),
    )
    store.write_sweep_file(run_dir, sweep)
    store.enqueue_plan(study, [p.params for p in plan], rounds.dispatch_order(plan))
    return study, uid


TRIAL_DEFINING = ("method", "metric", "metrics", "program", "command", "base", "trainer", "seeds")
TRIAL_DEFINING += ("seed_range",)  # adaptive seeds' (min, max): the distributions' seeds


def trial_config(spec: SweepSpec) -> dict[str, Any]:
    """What makes the sweep's trials what they are, beyond the plan's points (which the plan
    signature covers): the program, its fixed configuration, the metric (or metrics); as
    dotted keys (`metrics[1].goal`). What may change between runs of one sweep (run_cap, resources, limits, wandb) is not in it."""
    dumped = spec.model_dump(include=set(TRIAL_DEFINING), mode="json")
    flat: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict) and value:
            for name, inner in value.items():
                walk(inner, f"{key}.{name}" if key else str(name))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for index, inner in enumerate(value):  # metrics: `metrics[1].goal`
                walk(inner, f"{key}[{index}]")
        else:
            flat[key] = value

    walk(dumped, "")
    return flat


def changed_keys(before: dict[str, Any] | None, now: dict[str, Any]) -> list[str]:
    """`key: old -> new` for each key that differs (none when nothing was recorded)."""
    if before is None:
        return []
    keys = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    return [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in keys]


def label_study(study: optuna.Study, spec: SweepSpec) -> None:
    """Name a study the sweep created: its metrics (optuna-dashboard shows them, not
    "Objective 0"), and the sweep's name and spec as study attributes. A study the sweep
    joined is left as it was."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([m.name for m in spec.objectives] or ["value"])
    study.set_user_attr("sweep", spec.name)
    study.set_user_attr("spec_hash", spec.spec_hash)
    study.set_user_attr("spec", Path(spec.path).read_text()[:20_000])


def capacity(spec: SweepSpec, gpus: float | None = None) -> int:
    """How many trials to keep in flight: as many as the cluster's resources fit, plus one
    queued in Ray so a freed slot starts the next trial at once (Ray holds it until then);
    exactly `max_concurrent` when that is the tighter limit (Ray cannot enforce it).
    `gpus`: a trial's share now, under `gpus: auto` (`run.packing`)."""
    resources = ray.cluster_resources()
    need = spec.resources.model_copy(update={"gpus": gpus or spec.resources.gpus_needed})
    fits = [math.floor(resources.get("CPU", 0) / need.cpus + 1e-9)] if need.cpus else []
    if need.gpus:
        fits.append(math.floor(resources.get("GPU", 0) / need.gpus + 1e-9))
    capacity = min(fits) if fits else 1
    if capacity < 1:
        raise UserError(
            f"{spec.path}: resources: a trial needs {need.cpus} cpus and {need.gpus} "
            f"gpus, but the cluster has {resources.get('CPU', 0)} cpus and "
            f"{resources.get('GPU', 0)} gpus"
        )
    if spec.max_concurrent and spec.max_concurrent <= capacity:
        return spec.max_concurrent
    return capacity + 1


def check_reachable(address: str) -> None:
    """Fail in seconds, not minutes (Ray retries a dead address for long), on a host:port
    or ray://host:port nobody listens on. Other address forms (auto, ...) are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or "/" in host:
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise UserError(f"cannot join the Ray cluster at {address}: {error}") from None


def store_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
