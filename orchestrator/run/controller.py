"""The sweep loop: ask the study for a trial, run it as a Ray task, stream its metrics into the
store, prune, retry, and tell the study how it ended.

One controller runs a sweep directory at a time (a lock file in `runs/<sweep>/`). Killed, it
leaves RUNNING trials in the store; the next controller adopts them and runs them again from
their checkpoints, as the same Optuna trials, so no point of the plan runs twice.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import ray
from optuna.trial import TrialState

from orchestrator.plan import space
from orchestrator.programs import script as script_program
from orchestrator.run import naming as trial_run
from orchestrator.run import setup as sweep_setup
from orchestrator.run.display import Display, PlainDisplay, TrialView
from orchestrator.run.worker import STOP_FILE, TrialRequest, run_trial
from orchestrator.spec.model import SweepSpec
from orchestrator.store import owners
from orchestrator.store import trials as store

SYSTEM_FAILURES = (
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.OwnerDiedError,
)
POLL_SECONDS = 0.2
CAPACITY_SECONDS = 2.0
TRACEBACK_CHARS = 8000


@dataclass
class ActiveTrial:
    """A trial the controller has dispatched and not yet told."""

    trial: optuna.Trial
    request: TrialRequest
    view: TrialView
    generator: Any = None
    retries: int = 0
    stopping: str | None = None  # why we asked it to stop: "pruned" | "interrupted"
    result: dict[str, Any] | None = None
    last_value: float | None = None


@dataclass
class SweepOutcome:
    run_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False


class Controller:
    """Runs one sweep spec to the end (or until interrupted), with the store as the truth."""

    def __init__(
        self,
        spec: SweepSpec,
        *,
        runs_root: str | Path = "runs",
        address: str | None = None,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        display: Display | None = None,
        overrides: list[str] | None = None,
    ):
        self.spec = spec
        self.run_dir = (Path(runs_root) / spec.name).resolve()
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.display = display or PlainDisplay()
        self.overrides = list(overrides or [])
        self.metric = spec.metric.name if spec.metric else None
        self.goal = spec.metric.goal if spec.metric else "minimize"
        self.active: dict[Any, ActiveTrial] = {}  # generator -> trial
        self.plan = space.expand(spec)
        self.distributions = store.distributions_for_plan([p.params for p in self.plan])
        self.stop_requests = 0
        self.target_reached = False
        self.spec_dir = str(Path(spec.path).resolve().parent)
        if Path(self.spec_dir) == self.run_dir:  # resumed from the spec's copy: the original's
            self.spec_dir = str(Path(store.read_sweep_file(self.run_dir)["spec_path"]).parent)
        self.python_path = list(dict.fromkeys([self.spec_dir, os.getcwd()]))
        self.script = script_program.is_script(spec.program, spec.command)
        self.me = owners.new_identity()  # this controller, as the owner of its trials

    # ---------------------------------------------------------------- setup

    def run(self) -> SweepOutcome:
        """Run the sweep; return when every trial has ended or the user stopped it."""
        script_program.check_program(self.spec, self.spec_dir)
        lock = sweep_setup.acquire_lock(self.run_dir)
        started_ray = sweep_setup.start_ray(self.address, self.num_cpus, self.num_gpus)
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:  # Python takes signals only there; a service calls request_stop()
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            self.study, self.uid = sweep_setup.open_study(
                self.spec, self.run_dir, self.plan, self.overrides, self._total()
            )
            self._check_capacity()
            done = sum(  # the sweep's own: an attached study's other trials do not count
                1
                for t in self.study.get_trials(deepcopy=False)
                if t.state.is_finished() and owners.OWNER in t.user_attrs
            )
            title = f"sweep {self.spec.name}"
            self.display.start(title, self._total(), done, self.metric or "metric")
            try:
                self._loop()
            finally:
                self.display.stop()
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, previous)
            if started_ray:
                ray.shutdown()
            sweep_setup.release_lock(lock)
        counts: dict[str, int] = {}
        for row in store.trial_rows(self.study, self.goal):
            counts[row.state] = counts.get(row.state, 0) + 1
        return SweepOutcome(self.run_dir, counts, interrupted=self.stop_requests > 0)

    def _total(self) -> int | None:
        return len(self.plan) if self.plan else self.spec.run_cap

    def _check_capacity(self) -> None:
        self.capacity = sweep_setup.capacity(self.spec)
        self.capacity_checked = time.monotonic()

    # ---------------------------------------------------------------- the loop

    def _loop(self) -> None:
        self.watch = owners.OrphanWatch(self.me)
        self.beat_at = time.monotonic()
        orphans = owners.adopt(self.study, self.watch, self.me, self.capacity)
        while True:
            if time.monotonic() - self.capacity_checked > CAPACITY_SECONDS:
                self._check_capacity()  # nodes join and leave
            if time.monotonic() - self.beat_at > owners.HEARTBEAT_SECONDS:
                self._heartbeat()
                if not orphans and not self.stop_requests:
                    slots = self.capacity - len(self.active)
                    orphans = owners.adopt(self.study, self.watch, self.me, slots)
            while (
                len(self.active) < self.capacity
                and not self.stop_requests
                and not self.target_reached
            ):
                if orphans:
                    self._dispatch(optuna.trial.Trial(self.study, orphans.pop(0)), True)
                elif self._more_to_ask():
                    self._dispatch(self.study.ask(self.distributions or None), False)
                else:
                    break
            if not self.active:
                if self.stop_requests or self.target_reached or not owners.others_run(self.study):
                    return
                time.sleep(POLL_SECONDS)  # another controller's trials may yet be orphaned
                continue
            ready, _ = ray.wait(list(self.active), num_returns=1, timeout=POLL_SECONDS)
            for generator in ready:
                self._advance(generator)
            if self.stop_requests > 1:
                self._cancel_all()
                return

    def _more_to_ask(self) -> bool:
        if self.plan:
            return store.has_waiting(self.study)
        if self.spec.run_cap is None:
            return True
        ours = [  # trials of orchestrate controllers: a plain Optuna study's own do not count
            t
            for t in self.study.get_trials(deepcopy=False)
            if owners.OWNER in t.user_attrs and not t.user_attrs.get(store.DISCARDED)
        ]
        return len(ours) < self.spec.run_cap

    def _heartbeat(self) -> None:
        """Show other controllers that ours still run; drop any that one of them adopted
        (we looked dead to it: it runs the trial now)."""
        self.beat_at = time.monotonic()
        by_id = {active.trial._trial_id: active for active in self.active.values()}
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            active = by_id.get(trial._trial_id)
            if active is None:
                continue
            if owners.still_mine(trial, self.me):
                active.trial.set_user_attr(owners.HEARTBEAT, round(time.time(), 1))
            else:
                ray.cancel(active.generator, force=True)
                del self.active[active.generator]

    def _dispatch(self, trial: optuna.Trial, adopted: bool) -> None:
        """Start a trial as a Ray task; an adopted one (left RUNNING by a dead controller)
        starts again from its checkpoint."""
        attrs = trial.user_attrs
        index = attrs.get("plan_index")
        twin = store.earlier_twin(self.study, trial) if index is not None and not adopted else None
        if twin is not None:  # two controllers enqueued the plan at once: the first copy runs
            self._discard(trial, f"duplicate of trial {twin.number}")
            return
        if index is not None:
            params, overrides = self.plan[index].params, self.plan[index].overrides
        elif self.plan:  # another controller took the last planned point first
            self._discard(trial, "no planned point left to run")
            return
        else:  # bayes: the sampler chooses
            params = space.suggest(trial, self.spec)  # an adopted trial gets its own back
            overrides = space.trainer_overrides(self.spec, params, self.spec.seeds[0])
        if not adopted:
            trial.set_user_attr(owners.OWNER, self.me)
            trial.set_user_attr(owners.HEARTBEAT, round(time.time(), 1))
        checkpoint_dir = self.run_dir / "trials" / f"{trial.number:04d}"
        if adopted and attrs.get("checkpoint_dir"):  # perhaps another controller's
            checkpoint_dir = Path(attrs["checkpoint_dir"])
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        (checkpoint_dir / STOP_FILE).unlink(missing_ok=True)
        request = TrialRequest(
            trial_number=trial.number,
            program=None if self.spec.is_trainer_program() else self.spec.program,
            base=self.spec.base,
            overrides=overrides,
            checkpoint_dir=str(checkpoint_dir),
            python_path=self.python_path,
        )
        planned = self.plan[index] if index is not None else None
        request.wandb = trial_run.run_options(
            self.spec, self.run_dir, self.uid, trial.number, params, planned
        )
        if request.wandb and adopted and attrs.get("wandb_run_id"):
            request.wandb |= {"run_id": attrs["wandb_run_id"]}  # the run goes on
            request.wandb["dir"] = str(Path(attrs.get("wandb_dir", request.wandb["dir"])).parent)
        if self.script:  # its own wandb.init() opens the run request.wandb describes
            request.command = script_program.command_template(self.spec.command)
            request.spec_dir = self.spec_dir
            request.overrides = script_program.sweep_args(overrides, self.spec.param_paths)
        if not adopted:
            trial.set_user_attr("checkpoint_dir", str(checkpoint_dir))
            if request.wandb:
                trial.set_user_attr("wandb_run_id", request.wandb["run_id"])
                trial.set_user_attr("wandb_dir", str(self.run_dir / "wandb"))
        elif attrs.get("status_detail"):
            trial.set_user_attr("status_detail", None)
        view = TrialView(trial.number, params, state="queued")
        self._submit(ActiveTrial(trial, request, view, retries=int(attrs.get("retries", 0))))

    def _submit(self, active: ActiveTrial) -> None:
        options: dict[str, Any] = {"num_cpus": self.spec.resources.cpus, "max_retries": 0}
        if self.spec.resources.gpus:
            options["num_gpus"] = self.spec.resources.gpus
        active.generator = remote_run_trial().options(**options).remote(active.request)
        self.active[active.generator] = active
        self.display.update(active.view, "queued")

    def _advance(self, generator: Any) -> None:
        """Handle the next event of a trial's stream, or its end."""
        active = self.active[generator]
        try:
            ref = next(generator)
            event = ray.get(ref)
        except StopIteration:
            self._finish(active)
            return
        except ray.exceptions.TaskCancelledError:
            self._finish(active)
            return
        except SYSTEM_FAILURES as error:
            self._on_system_failure(active, error)
            return
        except ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, KeyboardInterrupt | ray.exceptions.TaskCancelledError):
                self._finish(active)
            else:
                self._fail(active, _reason(error.cause), _traceback_text(error))
            return
        kind = event["event"]
        if kind == "started":
            active.view.node = event.get("node_ip") or event.get("node") or ""
            active.view.started = event["started_at"]
            active.view.state = "running"
            active.trial.set_user_attr("node", active.view.node)
            active.trial.set_user_attr("node_id", event.get("node_id"))
            active.trial.set_user_attr("started_at", round(event["started_at"], 3))
            self.display.update(active.view, "started")
        elif kind == "metrics":
            self._on_metrics(active, event["reports"])
        elif kind == "finished":
            active.result = event["result"]

    def _on_metrics(self, active: ActiveTrial, reports: list[dict[str, Any]]) -> None:
        view = active.view
        for metrics in reports:
            view.step = metrics.get("step", view.step)
            value = metrics.get(self.metric) if self.metric else None
            if value is None or active.stopping:
                continue
            value = float(value)
            view.latest = active.last_value = value
            if math.isfinite(value):
                better = min if self.goal == "minimize" else max
                view.best = value if view.best is None else better(view.best, value)
                active.trial.report(value, int(view.step or 0))
                if active.trial.should_prune():
                    self._stop(active, "pruned", cancel=True)
                    break
                self._check_target(value)
        self.display.update(view, "metrics")

    def _check_target(self, value: float) -> None:
        target = self.spec.metric.target if self.spec.metric else None
        if target is None:
            return
        if (self.goal == "minimize" and value <= target) or (
            self.goal == "maximize" and value >= target
        ):
            self.target_reached = True

    def _stop(self, active: ActiveTrial, why: str, cancel: bool) -> None:
        """Ask a trial to stop: a STOP file (it checkpoints first) or Ray's cancel."""
        active.stopping = why
        if cancel:
            ray.cancel(active.generator)
        else:
            Path(active.request.checkpoint_dir, STOP_FILE).touch()

    def _cancel_all(self) -> None:
        for active in list(self.active.values()):
            ray.cancel(active.generator, force=True)
            self._mark_interrupted(active)
            del self.active[active.generator]

    # ---------------------------------------------------------------- endings

    def _finish(self, active: ActiveTrial) -> None:
        """The task ended without error: tell the study how the trial went."""
        del self.active[active.generator]
        result = active.result or {}
        outcome = result.get("outcome", "completed")
        trial = active.trial
        trial.set_user_attr("ended_at", store.now())
        if active.stopping == "pruned":
            self._tell(active, TrialState.PRUNED)
        elif active.stopping == "interrupted" or outcome == "stopped":
            self._mark_interrupted(active)
        elif outcome == "diverged":
            self._tell(active, TrialState.FAIL, reason="diverged")
        else:
            value = result.get(self.metric) if self.metric else result.get("value", 0.0)
            if value is None:
                value = active.last_value
            if value is None or not math.isfinite(float(value)):
                self._tell(
                    active, TrialState.FAIL, reason=f"metric {self.metric!r} was never reported"
                )
            else:
                final = {k: v for k, v in result.items() if isinstance(v, int | float | str)}
                trial.set_user_attr("final_metrics", _jsonable(final))
                self._tell(active, TrialState.COMPLETE, value=float(value))

    def _tell(
        self,
        active: ActiveTrial,
        state: TrialState,
        value: float | None = None,
        reason: str | None = None,
        trace: str | None = None,
    ) -> None:
        if reason:
            active.trial.set_user_attr("failure_reason", reason)
        if trace:
            active.trial.set_user_attr("traceback", trace[-TRACEBACK_CHARS:])
        self.study.tell(active.trial, value if state == TrialState.COMPLETE else None, state=state)
        active.view.state = state.name.lower()
        active.view.reason = reason
        active.view.ended = time.time()
        self.display.update(active.view, "finished")

    def _discard(self, trial: optuna.Trial, reason: str) -> None:
        """End a trial that is not a point of the sweep; results and status leave it out."""
        trial.set_user_attr(store.DISCARDED, reason)
        self.study.tell(trial, state=TrialState.FAIL)

    def _fail(self, active: ActiveTrial, reason: str, trace: str) -> None:
        del self.active[active.generator]
        active.trial.set_user_attr("ended_at", store.now())
        self._tell(active, TrialState.FAIL, reason=reason, trace=trace)

    def _mark_interrupted(self, active: ActiveTrial) -> None:
        active.trial.set_user_attr("status_detail", "interrupted")
        active.trial.set_user_attr(owners.OWNER, None)  # released: any controller may resume it
        active.view.state = "interrupted"
        active.view.ended = time.time()
        self.display.update(active.view, "finished")

    def _on_system_failure(self, active: ActiveTrial, error: Exception) -> None:
        """A worker or node died: run the trial again from its checkpoint, up to max_retries."""
        del self.active[active.generator]
        if active.stopping:
            self._finish_stopped_after_crash(active)
            return
        if active.retries >= self.spec.max_retries:
            active.trial.set_user_attr("ended_at", store.now())
            reason = f"{type(error).__name__} after {active.retries} retries"
            self._tell(active, TrialState.FAIL, reason=reason, trace=str(error))
            return
        active.retries += 1
        active.trial.set_user_attr("retries", active.retries)
        active.view.state = "retrying"
        self.display.update(active.view, "retry")
        active.view.state = "queued"
        self._submit(active)

    def _finish_stopped_after_crash(self, active: ActiveTrial) -> None:
        if active.stopping == "pruned":
            self._tell(active, TrialState.PRUNED)
        else:
            self._mark_interrupted(active)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        """Ctrl-C once: stop dispatching, let running trials checkpoint; twice: cancel now."""
        self.request_stop()

    def request_stop(self) -> None:
        """Stop dispatching and let running trials checkpoint and stop, recorded as interrupted;
        a second request cancels them at once. Safe to call from another thread."""
        self.stop_requests += 1
        if self.stop_requests == 1:
            print(
                "\nstopping: running trials save a checkpoint and stop (Ctrl-C again to cancel now)",
                flush=True,
            )
            for active in list(self.active.values()):
                if not active.stopping:  # a trial still queued in Ray is simply cancelled
                    self._stop(active, "interrupted", cancel=active.view.state == "queued")


@functools.cache
def remote_run_trial() -> Any:
    """The worker's Ray task, made once: Ray exports a remote function each time one is made."""
    return ray.remote(run_trial)


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "error"
    text = f"{type(error).__name__}: {error}".strip()
    return text.splitlines()[0][:300]


def _traceback_text(error: ray.exceptions.RayTaskError) -> str:
    cause = error.cause
    if cause is not None and cause.__traceback__ is not None:
        return "".join(traceback.format_exception(cause))
    return str(error)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
        for k, v in values.items()
    }
