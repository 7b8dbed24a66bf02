"""`run_cap` met exactly by controllers sharing one study: a trial is created with its owner on
it (one write, numbered atomically by the storage) and runs only when fewer than `run_cap` of
the sweep's trials are numbered below it. Both storages a unit test can hold: a journal file
and SQLite, each opened twice, as two controllers would."""

from __future__ import annotations

import json
import threading

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.trial import TrialState

from orchestrator import store
from orchestrator.store import attrs, owners, run_cap


def opened(tmp_path, kind: str) -> optuna.Study:
    """The study through a storage object of its own (as a controller's process opens it)."""
    if kind == "journal":
        storage = JournalStorage(store.JournalFile(str(tmp_path / "study.journal")))
    else:
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    return optuna.create_study(storage=storage, study_name="shared", load_if_exists=True)


def two_openings(tmp_path, kind: str) -> tuple[optuna.Study, optuna.Study]:
    return opened(tmp_path, kind), opened(tmp_path, kind)


def counted(study: optuna.Study) -> int:
    """What a controller counts before it asks (`Controller._more_to_ask`)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if run_cap.counted(t))


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_controllers_at_the_cap_at_once_run_exactly_run_cap(tmp_path, kind):
    a, b = two_openings(tmp_path, kind)
    me_a, me_b = owners.new_identity(), owners.new_identity()
    a.enqueue_trial({})  # a plain Optuna trial (no owner): it never counts
    a.tell(a.ask(), 0.5)
    for _ in range(2):
        a.tell(run_cap.ask(a, None, me_a), 1.0)
    # Both see 2 of 3 and ask: counting first, as the controller did, they would both run.
    assert counted(a) == counted(b) == 2
    mine, theirs = run_cap.ask(a, None, me_a), run_cap.ask(b, None, me_b)
    assert mine.user_attrs[attrs.OWNER] == me_a and theirs.user_attrs[attrs.OWNER] == me_b
    assert run_cap.over_cap(a, mine.number, 3) is None
    why = run_cap.over_cap(b, theirs.number, 3)
    assert why == "past run_cap: 3 of the sweep's trials were created before it"
    # Asked in the other order, the verdicts are the same: they follow the numbers.
    assert run_cap.over_cap(b, mine.number, 3) is None
    assert run_cap.over_cap(a, theirs.number, 3) == why


def test_a_trial_carries_its_owner_in_the_record_that_creates_it(tmp_path):
    """Atomic: the journal's record that makes the trial (and so gives its number) holds its
    owner; no reader can see the trial without it."""
    study, _ = two_openings(tmp_path, "journal")
    me = owners.new_identity()
    trial = run_cap.ask(study, {"x": optuna.distributions.FloatDistribution(0, 1)}, me)
    assert 0 <= trial.params["x"] <= 1  # the fixed distributions are suggested, as in `ask`
    records = [json.loads(line) for line in (tmp_path / "study.journal").read_text().splitlines()]
    created = [r for r in records if "user_attrs" in r and "datetime_start" in r]
    assert len(created) == 1 and created[0]["user_attrs"][attrs.OWNER] == me
    assert created[0]["state"] == TrialState.RUNNING


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_four_racing_controllers_never_pass_the_cap(tmp_path, kind):
    """Four threads with their own storages, each counting and asking in a loop with a
    barrier before every ask (all at the cap's edge at once): exactly run_cap trials run."""
    cap, racers = 9, 4
    barrier = threading.Barrier(racers, timeout=60)
    ran: list[int] = []
    errors: list[BaseException] = []

    def controller(study: optuna.Study) -> None:
        me = owners.new_identity()
        try:
            while True:
                more = counted(study) < cap
                barrier.wait()  # everyone has counted before anyone asks
                if more:
                    trial = run_cap.ask(study, None, me)
                    if run_cap.over_cap(study, trial.number, cap):
                        trial.set_user_attr(attrs.DISCARDED, "past run_cap")
                        study.tell(trial, state=TrialState.FAIL)
                    else:
                        ran.append(trial.number)
                        study.tell(trial, 1.0)
                barrier.wait()  # everyone has asked before anyone counts again
                if not more:
                    return
        except BaseException as error:  # noqa: BLE001 (reported by the test)
            errors.append(error)
            barrier.abort()

    studies = [opened(tmp_path, kind) for _ in range(racers)]
    a = studies[0]
    threads = [threading.Thread(target=controller, args=(s,)) for s in studies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(ran) == cap and counted(a) == cap
    assert sorted(ran) == sorted(t.number for t in a.get_trials() if run_cap.counted(t))
