"""Which controller runs which trial, so that several controllers can share one study.

Every trial a controller dispatches carries two user attributes: `controller` (the owner:
`{"id": a token new each start, "machine": ..., "pid": ...}`) and `heartbeat` (rewritten
every HEARTBEAT_SECONDS while the owner runs it). A RUNNING trial is an orphan, free to be
adopted and resumed from its checkpoint, when its owner is gone:
- `controller` is null: its controller stopped (Ctrl-C) and released it;
- the owner ran on this machine and its pid is no longer alive;
- its `heartbeat` has not changed for STALE_SECONDS of this controller's own watching (an
  owner on another machine; no clocks are compared across machines).
A RUNNING trial without a `controller` attribute is not ours (a plain Optuna worker's) and is
never touched.

Two controllers may find the same orphan at once. `claim` makes adoption exclusive with only
what every Optuna storage gives (a linearizable last-writer-wins user attribute): read the
trial (still the orphan seen), write our token, and give up at once if read-to-written took
more than CLAIM_SECONDS / 2; then wait CLAIM_SECONDS and read it back: we own it iff our token
is there. Why at most one wins: if B's read did not see A's claim, B's read came before A's
write, so B's write landed within CLAIM_SECONDS / 2 of A's write ending; both read-backs come
CLAIM_SECONDS after their own writes, so both see both writes and agree on the last one. (A
claimant that saw the other's claim in its read stops there.) An owner that was merely paused
past STALE_SECONDS finds a foreign token on its trial at its next heartbeat and stops its copy.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any

from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from orchestrator.store.attrs import HEARTBEAT, OWNER

HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 60.0
CLAIM_SECONDS = 2.0


def machine_id() -> str:
    """This machine (and pid namespace): two containers with one hostname differ here."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return ":".join(parts)


def new_identity() -> dict[str, Any]:
    """This controller as a trial's owner; the token tells two starts of one pid apart."""
    return {"id": secrets.token_hex(6), "machine": machine_id(), "pid": os.getpid()}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OrphanWatch:
    """Finds RUNNING trials whose controller is gone, watching heartbeats over time."""

    def __init__(self, me: dict[str, Any], stale_seconds: float = STALE_SECONDS):
        self.me = me
        self.stale_seconds = stale_seconds
        self.seen: dict[int, tuple[Any, float]] = {}  # trial id -> (owner+heartbeat, since)

    def orphans(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """The orphans among `trials`, oldest first."""
        now = time.monotonic()
        found = []
        running = [t for t in trials if t.state == TrialState.RUNNING and OWNER in t.user_attrs]
        for trial in running:
            owner = trial.user_attrs[OWNER]
            mark = (_owner_id(owner), trial.user_attrs.get(HEARTBEAT))
            if self.seen.get(trial._trial_id, (None,))[0] != mark:
                self.seen[trial._trial_id] = (mark, now)
            if owner and owner.get("id") == self.me["id"]:
                continue
            if self.gone(owner, now - self.seen[trial._trial_id][1]):
                found.append(trial)
        self.seen = {k: v for k, v in self.seen.items() if k in {t._trial_id for t in running}}
        return found

    def gone(self, owner: dict[str, Any] | None, unchanged_for: float) -> bool:
        if not owner:
            return True
        if owner.get("machine") == self.me["machine"] and not pid_alive(int(owner["pid"])):
            return True
        return unchanged_for >= self.stale_seconds


def claim(
    storage: BaseStorage,
    orphans: list[FrozenTrial],
    me: dict[str, Any],
    wait: float = CLAIM_SECONDS,
) -> list[int]:
    """Try to take over `orphans` (as `OrphanWatch` saw them); the trial ids now ours."""
    written: list[int] = []
    for seen in orphans:
        started = time.monotonic()
        fresh = storage.get_trial(seen._trial_id)
        unchanged = all(
            fresh.user_attrs.get(k) == seen.user_attrs.get(k) for k in (OWNER, HEARTBEAT)
        )
        if fresh.state != TrialState.RUNNING or not unchanged:
            continue  # someone adopted it, or it came back to life
        storage.set_trial_user_attr(seen._trial_id, OWNER, me)
        if time.monotonic() - started <= wait / 2:
            written.append(seen._trial_id)
    if not written:
        return []
    time.sleep(wait)
    won = []
    for trial_id in written:
        trial = storage.get_trial(trial_id)
        if trial.state == TrialState.RUNNING and _owner_id(trial.user_attrs.get(OWNER)) == me["id"]:
            won.append(trial_id)
    return won


def adopt(study: Any, watch: OrphanWatch, me: dict[str, Any], slots: int) -> list[int]:
    """Claim up to `slots` of the study's orphans; the trial ids now ours."""
    if slots <= 0:
        return []
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    orphans = watch.orphans(running)[:slots]
    return claim(study._storage, orphans, me) if orphans else []


def others_run(study: Any) -> bool:
    """Whether orchestrate controllers (perhaps gone: then they become orphans) still hold
    RUNNING trials of the study; a controller with nothing to do waits for them."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return any(t.user_attrs.get(OWNER) for t in running)


def still_mine(trial: FrozenTrial, me: dict[str, Any]) -> bool:
    return _owner_id(trial.user_attrs.get(OWNER)) == me["id"]


def _owner_id(owner: Any) -> str | None:
    return owner.get("id") if isinstance(owner, dict) else None
