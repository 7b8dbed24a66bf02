"""The sweep loop: ask the study for a trial, run it as a Ray task, stream its metrics into the
store, prune, retry, and tell the study how it ended.

One controller runs a sweep directory at a time (a lock file in `runs/<sweep>/`). Killed, it
leaves RUNNING trials in the store; the next controller adopts them and runs them again from
their checkpoints, as the same Optuna trials, so no point of the plan runs twice.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import ray
from optuna.trial import TrialState

from orchestrator import store
from orchestrator.plan.expand import expand
from orchestrator.programs.base import STOP_FILE
from orchestrator.run import adaptive, checkpoint_checks, endings, packing, verdicts
from orchestrator.run import setup as sweep_setup
from orchestrator.run.active import ActiveTrial, SweepOutcome
from orchestrator.run.dispatch import Point, TrialFactory, record_dispatch
from orchestrator.run.display import Display, PlainDisplay, TrialView
from orchestrator.run.endings import Ending
from orchestrator.run.halting import HALT_AFTER, FirstFailures
from orchestrator.run.worker import remote_run_trial
from orchestrator.spec.model import SweepSpec
from orchestrator.store import attrs, owners

SYSTEM_FAILURES = (
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.OwnerDiedError,
)
POLL_SECONDS = 0.2
CAPACITY_SECONDS = 2.0
LIMIT_GRACE_SECONDS = 10.0  # from a time limit's stop request to killing the worker
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
        self.objectives = [m.name for m in spec.objectives]  # metrics[0] is self.metric
        self.active: dict[Any, ActiveTrial] = {}  # generator -> trial
        self.plan = expand(spec)
        self.distributions = adaptive.distributions(spec)  # of every seed adaptive seeds may add
        self.stop_requests = 0
        self.stop_signal: int | None = None
        self.target_reached = False
        self.halted: str | None = None
        self.first_failures = FirstFailures()  # this run's first endings: all failed alike?
        copy_of = store.sweep_of_spec_copy(spec.path)  # resumed from the sweep's copy
        if copy_of:  # the sweep whose copy it is, wherever that folder now lies
            self.run_dir = Path(copy_of.run_dir)
        relative = store.records_relative_paths(spec.storage, self.run_dir)
        self.relative_to = self.run_dir if relative else None  # how trial paths are recorded
        origin = Path(copy_of.spec_path if copy_of and copy_of.spec_path else spec.path).resolve()
        self.spec_dir = str(origin.parent)
        self.python_path = list(dict.fromkeys([self.spec_dir, os.getcwd()]))
        self.me = owners.new_identity()  # this controller, as the owner of its trials
        self.packer = packing.packer_for(spec.resources)  # gpus: auto, else None

    # ---------------------------------------------------------------- setup

    def run(self) -> SweepOutcome:
        """Run the sweep; return when every trial has ended or the user stopped it."""
        self.spec.trial_program.check_ready(self.spec.path, Path(self.spec_dir))
        checkpoint_checks.check_writable(self.spec)  # the `checkpoints:` store, before all
        self.spec, wandb_note = self.spec.with_reachable_wandb(self.run_dir)
        if wandb_note:
            print(wandb_note, flush=True)
        lock = sweep_setup.acquire_lock(self.run_dir)
        started_ray = sweep_setup.start_ray(
            self.address, self.num_cpus, self.num_gpus, self.spec, self.spec_dir
        )
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:  # Python takes signals only there; a service calls request_stop()
            previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            checkpoint_checks.warn_if_node_local(self.spec)  # several nodes, no store
            self.study, self.uid = sweep_setup.open_study(
                self.spec, self.run_dir, self.plan, self.overrides, self._total()
            )
            self.plan = adaptive.resumed_plan(self)  # with the seeds adaptive seeds added
            self.factory = TrialFactory(
                self.spec,
                self.plan,
                self.run_dir,
                self.uid,
                self.spec_dir,
                self.python_path,
                store.first_copies(self.study),
            )
            self.waiting = store.WaitingQueue(self.study)  # read once, taken in order
            prunes = self.metric and not isinstance(self.study.pruner, optuna.pruners.NopPruner)
            self.verdicts = verdicts.start() if prunes else None
            self._check_capacity()
            done = sum(  # the sweep's own: an attached study's other trials do not count
                1
                for t in self.study.get_trials(deepcopy=False)
                if t.state.is_finished() and attrs.OWNER in t.user_attrs
            )
            title = f"sweep {self.spec.name}"
            self.display.start(title, self._total(), done, self.metric or "metric")
            try:
                self._loop()
            finally:
                self.display.stop()
        finally:
            if in_main_thread:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            if started_ray:
                sweep_setup.stop_ray()
            sweep_setup.release_lock(lock)
        counts = store.count_states(store.trial_results(self.study, self.goal, pareto=False))
        interrupted = self.stop_requests > 0
        return SweepOutcome(
            self.run_dir, counts, interrupted, halted=self.halted, stop_signal=self.stop_signal
        )

    def _total(self) -> int | None:
        return len(self.plan) if self.plan else self.spec.run_cap

    def _check_capacity(self) -> None:
        self.capacity = sweep_setup.capacity(self.spec, self.packer and self.packer.share())
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
                and not self.halted
            ):
                if orphans:
                    self._dispatch(optuna.trial.Trial(self.study, orphans.pop(0)), True)
                elif self._more_to_ask():
                    trial = (  # bayes: created with its owner on it (run_cap)
                        self.waiting.take(self.distributions)
                        if self.plan
                        else store.run_cap.ask(self.study, self.distributions, self.me)
                    )
                    if trial is not None:  # None: another controller took the last one
                        self._dispatch(trial, False)
                else:
                    break
            if not self.active:
                if self.stop_requests or self.target_reached or self.halted:
                    return
                if adaptive.add_round(self):  # every trial so far ended: more seeds?
                    continue
                if not owners.others_run(self.study):
                    return
                time.sleep(POLL_SECONDS)  # another controller's trials may yet be orphaned
                continue
            ready, _ = ray.wait(list(self.active), num_returns=1, timeout=POLL_SECONDS)
            for generator in ready:
                self._advance(generator)
            if self.spec.trial_timeout or self.spec.report_timeout:
                self._enforce_time_limits()
            if self.stop_requests > 1:
                self._cancel_all()
                return

    def _more_to_ask(self) -> bool:
        if self.plan:  # taken from a queue read once; read again when it runs dry
            if not self.waiting:
                self.waiting.refill()
            return len(self.waiting) > 0
        if self.spec.run_cap is None:
            return True
        ours = sum(map(store.run_cap.counted, self.study.get_trials(deepcopy=False)))
        return ours < self.spec.run_cap  # (a plain Optuna study's own trials do not count)

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
                active.trial.set_user_attr(attrs.HEARTBEAT, round(time.time(), 1))
            else:
                ray.cancel(active.generator, force=True)
                del self.active[active.generator]

    def _dispatch(self, trial: optuna.Trial, adopted: bool) -> None:
        """Start a trial as a Ray task; an adopted one (left RUNNING by a dead controller)
        starts again from its checkpoint."""
        stored = trial.user_attrs
        point = self.factory.point(self.study, trial, stored, adopted)
        if not isinstance(point, Point):
            endings.record(self.study, trial, endings.discarded(point))
            return
        request = self.factory.request(trial, stored, point, adopted)
        record_dispatch(trial, stored, request, self.me, adopted, self.relative_to)
        view = TrialView(trial.number, point.params, state="queued")
        retries = int(stored.get(attrs.RETRIES, 0))
        self._submit(ActiveTrial(trial, request, view, retries=retries))

    def _submit(self, active: ActiveTrial) -> None:
        options: dict[str, Any] = {"num_cpus": self.spec.resources.cpus, "max_retries": 0}
        if self.spec.resources.gpus:
            packer, number = self.packer, active.trial.number
            options["num_gpus"] = packer.dispatch(number) if packer else self.spec.resources.gpus
        if self.verdicts is not None and active.request.program.waits_for_verdicts:
            active.judged = 0
            active.request.verdict = verdicts.VerdictWait(
                self.verdicts, active.trial.number, active.retries, self.metric
            )
        active.generator = remote_run_trial().options(**options).remote(active.request)
        self.active[active.generator] = active
        self.display.update(active.view, "queued")

    def _advance(self, generator: Any) -> None:
        """Handle the next event of a trial's stream, or its end."""
        active = self.active[generator]
        try:
            ref = next(generator)
            event = ray.get(ref)
        except (StopIteration, ray.exceptions.TaskCancelledError):
            self._end(active, self._returned(active))
            return
        except SYSTEM_FAILURES as error:
            self._on_system_failure(active, error)
            return
        except ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, KeyboardInterrupt | ray.exceptions.TaskCancelledError):
                self._end(active, self._returned(active))
            elif self.packer and self.packer.retries_alone(active.trial.number, error):
                self._on_system_failure(active, error)  # again, from its checkpoint, alone
            else:
                reason = endings.reason_of(error.cause)
                self._end(active, endings.failed(reason, endings.traceback_of(error)))
            return
        if packing.on_event(self.packer, active.view, event):  # the GPU column; gpus: auto
            self._check_capacity()
        kind = event["event"]
        if kind == "started":
            active.view.node = event.get("node_ip") or event.get("node") or ""
            active.view.started = event["started_at"]
            active.view.state = "running"
            active.began_at = active.heard_at = time.time()
            started = {attrs.NODE: active.view.node, attrs.NODE_ID: event.get("node_id")}
            started[attrs.STARTED_AT] = round(event["started_at"], 3)
            started[attrs.WORKER] = store.worker_record(event, self.spec.resources)
            store.set_user_attrs(active.trial, started)  # one write
            self.display.update(active.view, "started")
        elif kind == "metrics":
            active.heard_at = time.time()
            self._on_metrics(active, event["reports"])
        elif kind == "finished":
            active.result = event["result"]

    def _on_metrics(self, active: ActiveTrial, reports: list[dict[str, Any]]) -> None:
        view = active.view
        for metrics in reports:
            active.reported.update(metrics)
            view.step = metrics.get("step", view.step)
            value = metrics.get(self.metric) if self.metric else None
            if value is None:
                continue
            if not active.stopping and self._judge(active, float(value)):
                active.stopping = "pruned"  # told by its verdict, or else by Ray's cancel
                if not active.request.verdict:
                    ray.cancel(active.generator)
            if active.request.verdict:  # the trial waits for this verdict
                key = (active.trial.number, active.retries, active.judged)
                self.verdicts.post.remote(key, active.stopping)
            active.judged += 1
        self.display.update(view, "metrics")

    def _judge(self, active: ActiveTrial, value: float) -> bool:
        """Report a value of the metric to the study; whether the pruner stops the trial.
        With several metrics, Optuna's `Trial.report` refuses: the first one's value is
        written as the intermediate value (the results' best, the curves) and none is pruned."""
        view = active.view
        view.latest = value
        if not math.isfinite(value):
            return False
        better = min if self.goal == "minimize" else max
        view.best = value if view.best is None else better(view.best, value)
        self._check_target(value)
        if len(self.objectives) > 1:
            trial_id, step = active.trial._trial_id, int(view.step or 0)
            self.study._storage.set_trial_intermediate_value(trial_id, step, value)
            return False
        active.trial.report(value, int(view.step or 0))
        return active.trial.should_prune()

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

    def _enforce_time_limits(self) -> None:
        """A start past `trial_timeout`, or silent past `report_timeout`, is asked to stop (a
        STOP file: it checkpoints and returns) and fails with that reason; one that has not
        ended LIMIT_GRACE_SECONDS later (a hung program) is killed."""
        now = time.time()
        for active in list(self.active.values()):
            if active.stopped_at is not None and now - active.stopped_at > LIMIT_GRACE_SECONDS:
                ray.cancel(active.generator, force=True)
                self._end(active, endings.stopped(active.stopping))
            elif active.began_at is None or active.stopping:
                continue
            elif self.spec.trial_timeout and now - active.began_at > self.spec.trial_timeout:
                self._stop_for(
                    active, f"timed out after {self.spec.trial_timeout:g} s (trial_timeout)"
                )
            elif self.spec.report_timeout and now - active.heard_at > self.spec.report_timeout:
                self._stop_for(
                    active, f"no report for {self.spec.report_timeout:g} s (report_timeout)"
                )

    def _stop_for(self, active: ActiveTrial, reason: str) -> None:
        self._stop(active, reason, cancel=False)  # (a cancelled task blocks its stream)
        active.stopped_at = time.time()

    def _cancel_all(self) -> None:
        for active in list(self.active.values()):
            ray.cancel(active.generator, force=True)
            self._end(active, endings.INTERRUPTED)

    # ---------------------------------------------------------------- endings

    def _returned(self, active: ActiveTrial) -> Ending:
        """How a trial whose task returned (or was cancelled) ended."""
        return endings.of_result(
            active.result or {}, active.stopping, self.objectives, active.reported
        )

    def _end(self, active: ActiveTrial, ending: Ending) -> None:
        """The one way a dispatched trial ends: recorded in the store, shown, forgotten."""
        self.active.pop(active.generator, None)
        endings.record(self.study, active.trial, ending, last_step=active.view.step)
        active.view.state = ending.name
        active.view.reason = ending.reason
        active.view.ended = time.time()
        self.display.update(active.view, "finished")
        reason = self.first_failures.note(ending, active.view.params)
        if reason and self._more_to_ask():  # the rest would fail alike: they stay queued
            self.halted = reason
            print(
                f"\nstopping: the first {HALT_AFTER} trials all failed with: {self.halted}\n"
                "fix that and run the same command again: the rest are still queued",
                flush=True,
            )

    def _on_system_failure(self, active: ActiveTrial, error: Exception) -> None:
        """A worker or node died: run the trial again from its checkpoint, up to max_retries."""
        if active.stopping:
            self._end(active, endings.stopped(active.stopping))
        elif active.retries >= self.spec.max_retries:
            reason = f"{type(error).__name__} after {active.retries} retries"
            self._end(active, endings.failed(reason, str(error)))
        else:
            del self.active[active.generator]
            active.began_at = None  # its limits count again from its next start
            active.retries += 1
            active.trial.set_user_attr(attrs.RETRIES, active.retries)
            active.view.state = "retrying"
            self.display.update(active.view, "retry")
            active.view.state = "queued"
            self._submit(active)

    def _on_signal(self, signum: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM (what `timeout`, systemd, Kubernetes and Slurm send) once: stop
        dispatching, let running trials checkpoint; twice: cancel now."""
        self.stop_signal = self.stop_signal or signum
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
