"""The names of the user attributes every trial of a sweep carries in the store.

Optuna keeps params, state, value and intermediate values; everything else orchestrate knows
about a trial is one of these attributes, written by the controller and read by `status`,
the results and the report. Each name is defined here once.
"""

from __future__ import annotations

PLAN_INDEX = "plan_index"  # its point in a fixed plan (grid, random, ablation x seeds)
CHECKPOINT_DIR = "checkpoint_dir"  # the trial's directory: checkpoints, output, STOP file
CHECKPOINT_STORE = "checkpoint_store"  # {"uri", "key"}: its folder in a `checkpoints:` store
WANDB_RUN_ID = "wandb_run_id"
WANDB_RUN_PATH = "wandb_run_path"  # entity/project/id, once a run is synced
WANDB_DIR = "wandb_dir"
NODE = "node"  # where it last ran (IP, else host name)
NODE_ID = "node_id"  # Ray's node id
STARTED_AT = "started_at"  # epoch seconds of its last start
ENDED_AT = "ended_at"
LAST_STEP = "last_step"  # the step it last reported when it ended (the table's `step`)
RETRIES = "retries"  # restarts after a worker or node died
STATUS_DETAIL = "status_detail"  # "interrupted" while a stopped trial waits to be resumed
FAILURE_REASON = "failure_reason"
TRACEBACK = "traceback"
FINAL_METRICS = "final_metrics"  # the program's numeric and string results
DISCARDED = "discarded"  # why a trial is no point of the sweep (a duplicate)
OWNER = "controller"  # the controller that runs it (see `orchestrator.store.owners`)
HEARTBEAT = "heartbeat"  # rewritten while its owner runs it
WORKER = "worker"  # {"pid", "cpus", "gpus"}: the worker process of its last start, and what
#                  it asked for (fair cost comparisons, compute accounting)

SEED_ROUNDS = "seed_rounds"  # a study attribute: adaptive seeds' added rounds, in order

INTERRUPTED = "interrupted"  # the value of STATUS_DETAIL
