"""The sweep's durable store: an Optuna storage holding every trial's state.

The store is the single source of truth. Besides Optuna's own fields (params, state, value,
intermediate values) each trial carries the user attributes named in `attrs` (its plan
point, directory, wandb run, node, times, retries, failure, final metrics, owner). Around it:
the storage itself (`journal`), the sweep file that says how to reopen it (`sweep_file`),
the plan's points in it (`trials`), which controller runs which trial (`owners`), and each
trial as everything downstream reads it (`results.TrialResult`).
"""

from orchestrator.store import attrs, run_cap, versions
from orchestrator.store.batched import set_user_attrs
from orchestrator.store.compute import totals as compute_totals
from orchestrator.store.compute import worker_record
from orchestrator.store.journal import (
    JOURNAL_NAME,
    JournalFile,
    journal_path,
    load_study,
    open_storage,
    storage_label,
)
from orchestrator.store.results import (
    TrialResult,
    best_first,
    count_states,
    objective_names,
    trial_results,
)
from orchestrator.store.sweep_file import (
    LOCK_FILE,
    SWEEP_FILE,
    SweepFile,
    located,
    read_sweep_file,
    records_relative_paths,
    sweep_dirs,
    sweep_of_spec_copy,
    within_sweep,
    write_sweep_file,
)
from orchestrator.store.trials import (
    attach_problem,
    count_waiting,
    distributions_for_plan,
    earlier_twin,
    enqueue_plan,
    first_copies,
    plan_conflict,
    storable,
)
from orchestrator.store.waiting import WaitingQueue

__all__ = [
    "JOURNAL_NAME",
    "LOCK_FILE",
    "SWEEP_FILE",
    "JournalFile",
    "SweepFile",
    "TrialResult",
    "attach_problem",
    "attrs",
    "run_cap",
    "versions",
    "best_first",
    "count_states",
    "distributions_for_plan",
    "count_waiting",
    "earlier_twin",
    "first_copies",
    "set_user_attrs",
    "WaitingQueue",
    "enqueue_plan",
    "journal_path",
    "load_study",
    "open_storage",
    "plan_conflict",
    "read_sweep_file",
    "storable",
    "worker_record",
    "compute_totals",
    "storage_label",
    "sweep_dirs",
    "sweep_of_spec_copy",
    "located",
    "records_relative_paths",
    "within_sweep",
    "objective_names",
    "trial_results",
    "write_sweep_file",
]
