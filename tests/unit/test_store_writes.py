"""The store's fast paths against a real journal file: several user attributes in one
append, and WAITING trials claimed without scanning the study, each by one controller."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.storages import JournalStorage
from optuna.trial import TrialState

from orchestrator.store import JournalFile
from orchestrator.store.batched import set_user_attrs
from orchestrator.store.waiting import WaitingQueue


def _study(path) -> optuna.Study:
    storage = JournalStorage(JournalFile(str(path)))
    return optuna.create_study(storage=storage, study_name="s", load_if_exists=True)


def test_user_attrs_set_together_are_one_append_that_every_reader_sees(tmp_path):
    study = _study(tmp_path / "j")
    trial = study.ask()
    backend = study._storage._backend
    appends = []
    write = backend.append_logs
    backend.append_logs = lambda logs: (appends.append(len(logs)), write(logs))
    set_user_attrs(trial, {"owner": {"id": "me"}, "heartbeat": 1.5, "dir": "trials/0000"})
    assert appends == [3]  # one write under one lock, one Optuna record per attribute
    assert trial.user_attrs == {"owner": {"id": "me"}, "heartbeat": 1.5, "dir": "trials/0000"}
    reread = _study(tmp_path / "j").trials[0]  # a new reader: Optuna's own replay
    assert reread.user_attrs == {"owner": {"id": "me"}, "heartbeat": 1.5, "dir": "trials/0000"}


def test_waiting_trials_are_taken_in_order_and_each_by_one_controller(tmp_path):
    first = _study(tmp_path / "j")
    for x in ("a", "b", "c"):
        first.enqueue_trial({"x": x})
    second = _study(tmp_path / "j")  # another controller's view of the same journal
    space = {"x": CategoricalDistribution(["a", "b", "c"])}
    mine, theirs = WaitingQueue(first), WaitingQueue(second)
    assert len(mine) == len(theirs) == 3
    taken = [mine.take(space), theirs.take(space), mine.take(space), theirs.take(space)]
    assert [t.params["x"] if t else None for t in taken] == ["a", "b", "c", None]
    assert theirs.take(space) is None and mine.take(space) is None
    states = [t.state for t in _study(tmp_path / "j").trials]
    assert states == [TrialState.RUNNING] * 3
    first.enqueue_trial({"x": "a"})
    mine.refill()  # read again once dry: what was queued since
    assert mine.take(space).params == {"x": "a"}
