"""A run's history as its JSONL mirror holds it, and the rows its wandb files lost.

The mirror (`<dir>/logs/<run_id>.jsonl`, written by ExperimentLogger) is line-buffered: it
holds every row a process logged, also when the process was SIGKILLed. wandb-core buffers
the run's `.wandb` file (32 KiB blocks, see wandb_records), so what it had not flushed dies
with it. A resumed run (a retried trial) repeats the steps after its checkpoint, so the
mirror's history is read "each step once": each attempt's rows replace the earlier attempts'
rows from the attempt's first step on. The report draws its curves from this history, and a
resumed logger replays into wandb the rows that its earlier wandb files lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.tracking.wandb_records import WandbLogError, find_run_files, summarize_run

log = logging.getLogger(__name__)

HISTORY_KINDS = {"metrics", "train", "val", "epoch", "custom"}  # records that are history rows


def jsonl_history(path: str | Path) -> list[dict[str, Any]]:
    """The history rows of the JSONL mirror at `path`, each step once, oldest first.

    An attempt runs from one `init` record to the next. Rows without a step, and a last line
    cut short by a killed process, are left out; a missing file has no rows.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    rows: list[dict[str, Any]] = []
    attempt_started = True  # before the first row of an attempt
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("kind") == "init":
            attempt_started = True
        elif entry.get("kind") in HISTORY_KINDS and entry.get("step") is not None:
            step = entry["step"]
            if attempt_started:  # the resumed trainer repeats the steps from here on
                rows = [row for row in rows if row["step"] < step]
                attempt_started = False
            rows.append({**entry["values"], "step": step})
    return rows


def lost_rows(
    jsonl_rows: Sequence[dict[str, Any]], wandb_history: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows of `jsonl_rows` (a `jsonl_history`) that come after the last one the run's
    wandb history holds, matched by `step` (tables do not count: they are not replayed)."""
    held = [row["step"] for row in wandb_history if "step" in row and not _is_table_row(row)]
    if not held:
        return list(jsonl_rows)
    last, held_at_last = held[-1], 0
    for step in reversed(held):
        if step != last:
            break
        held_at_last += 1
    lost, seen_at_last = [], 0
    for row in jsonl_rows:
        if row["step"] == last:  # e.g. a training and a validation row of one step
            seen_at_last += 1
            if seen_at_last > held_at_last:
                lost.append(row)
        elif row["step"] > last:
            lost.append(row)
    return lost


def _is_table_row(row: dict[str, Any]) -> bool:
    return any(isinstance(value, dict) and "_type" in value for value in row.values())


@dataclass
class EarlierAttempts:
    """What a resumed logger takes up from the earlier attempts of its run id."""

    rows: list[dict[str, Any]]  # the JSONL's history rows, each step once
    lost: list[dict[str, Any]]  # those of them the earlier wandb files do not hold
    next_wandb_step: int  # wandb's `_step` after the earlier files' last
    elapsed_s: float  # training seconds before this attempt


def earlier_attempts(jsonl_path: Path, wandb_dir: Path | None, run_id: str) -> EarlierAttempts:
    """Read the earlier attempts of a run id: its JSONL mirror and (unless `wandb_dir` is
    None: logging to wandb is off) its earlier wandb files."""
    rows = jsonl_history(jsonl_path)
    files = find_run_files(wandb_dir, run_id) if wandb_dir is not None else []
    history: list[dict[str, Any]] = []
    try:
        history = summarize_run(files).history if files else []
    except (OSError, WandbLogError) as error:
        log.warning("cannot read the earlier wandb files of run %s: %s", run_id, error)
    steps = [row["_step"] for row in history if "_step" in row]
    elapsed = [row["elapsed_s"] for row in [*history, *rows] if "elapsed_s" in row]
    return EarlierAttempts(
        rows=rows,
        lost=lost_rows(rows, history),
        next_wandb_step=max(steps) + 1 if steps else 0,
        elapsed_s=max(elapsed, default=0.0),
    )
