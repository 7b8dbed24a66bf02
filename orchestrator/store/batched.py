"""Several user attributes of a trial in one write.

Each `trial.set_user_attr` is one journal append under the journal's file lock; a trial sets
about ten of them (owner, directories, wandb run, node, times, ending). On a journal store
`set_user_attrs` appends them as one write: the same records, in Optuna's own format (one
attribute per record, as every Optuna reader expects), under one lock. Other storages set
them one by one.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal._storage import JournalOperation


def set_user_attrs(trial: optuna.Trial, values: dict[str, Any]) -> None:
    """Set every (key, value) of `values` as a user attribute of `trial`."""
    storage = trial.study._storage
    if not isinstance(storage, JournalStorage) or len(values) < 2:
        for key, value in values.items():
            trial.set_user_attr(key, value)
        return
    with storage._thread_lock:
        worker_id = storage._replay_result.worker_id
        storage._backend.append_logs(
            [
                {
                    "op_code": JournalOperation.SET_TRIAL_USER_ATTR,
                    "worker_id": worker_id,
                    "trial_id": trial._trial_id,
                    "user_attr": {key: value},
                }
                for key, value in values.items()
            ]
        )
        storage._sync_with_backend()
    trial._cached_frozen_trial.user_attrs.update(values)
