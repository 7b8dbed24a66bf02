"""A resumed run's history: the JSONL mirror's rows each step once, and the rows that a
SIGKILLed process's wandb files lost, replayed into the resumed wandb run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, read_jsonl, wait_until_dead, wandb_service_pids

from orchestrator.tracking.history import jsonl_history, lost_rows
from orchestrator.tracking.logger import ExperimentLogger
from orchestrator.tracking.wandb_records import (
    BLOCK_SIZE,
    find_run_files,
    read_run_history,
    summarize_run,
)

KILLED_TRAINER = """
import sys, time
from orchestrator.tracking.logger import ExperimentLogger

directory, steps, pad = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
options = dict(mode="offline", dir=directory, run_id="kill1", resume="allow")
logger = ExperimentLogger("p", "killed", **options)
for step in range(steps):
    report = {"step": step, "train_loss": 3.0 - 0.1 * step, "note": "x" * pad}
    if step in (4, 8):
        report["val_loss"] = {4: 2.0, 8: 2.2}[step]
    logger.log_metrics(report)
print("logged", flush=True)
time.sleep(600)
"""


def run_and_kill(directory: Path, steps: int, pad: int, flushed_bytes: int) -> None:
    """A process that logs `steps` rows, SIGKILLed with its wandb-core once the run's .wandb
    file has `flushed_bytes`: whatever wandb-core had not written yet is lost."""
    script = directory / "killed_trainer.py"
    script.write_text(KILLED_TRAINER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_SILENT": "true"}
    env.pop("WANDB_SERVICE", None)  # its own wandb-core, not this process's
    env["WANDB__TRANSACTION_LOG_FLUSH_INTERVAL"] = "3600"  # only full 32 KiB blocks get written
    process = subprocess.Popen(
        [sys.executable, str(script), str(directory), str(steps), str(pad)],
        stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline() == "logged\n"
        (wandb_file,) = find_run_files(directory / "wandb", "kill1")
        deadline = time.monotonic() + 30
        while wandb_file.stat().st_size < flushed_bytes and time.monotonic() < deadline:
            time.sleep(0.05)
        (core,) = wandb_service_pids(process.pid)
        os.kill(core, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    wait_until_dead(core)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds wandb-core through /proc")
@pytest.mark.parametrize(
    ("pad", "flushed_bytes", "resume_at"),
    [(0, 0, 9), (6000, 2 * BLOCK_SIZE, 12)],
    ids=["nothing-flushed", "two-blocks-flushed"],
)
def test_killed_run_resumes_into_one_history_with_every_step_once(
    tmp_path, pad, flushed_bytes, resume_at
):
    for _attempt in range(3):  # the kill races wandb-core's writes: set the case up again
        shutil.rmtree(tmp_path / "wandb", ignore_errors=True)
        shutil.rmtree(tmp_path / "logs", ignore_errors=True)
        run_and_kill(tmp_path, 12, pad, flushed_bytes)  # steps 0..11; the JSONL has them all
        (killed_file,) = find_run_files(tmp_path / "wandb", "kill1")
        held = len(summarize_run(killed_file).history)
        if held < 12:
            break
    assert held < 12 and (held > 0) == (pad > 0), held  # what wandb-core had written

    # The retried trial resumes from its checkpoint and repeats the steps after it.
    with ExperimentLogger(
        "p", "killed", mode="offline", dir=tmp_path, run_id="kill1", resume="allow"
    ) as logger:
        for step in range(resume_at, 16):
            logger.log_metrics({"step": step, "train_loss": 30.0 + step, "val_loss": 2.5})
    run = read_run_history(tmp_path / "wandb", "kill1")
    assert run.metric("step") == list(range(16))
    assert [row["_step"] for row in run.history] == list(range(16))
    before = [3.0 - 0.1 * step for step in range(resume_at)]
    assert run.metric("train/loss") == before + [30.0 + s for s in range(resume_at, 16)]
    assert run.summary["best/val_loss"] == 2.0 and run.summary["best/val_step"] == 4
    assert run.exit_code == 0 and run.name == "killed"
    (replay,) = [line for line in read_jsonl(logger.jsonl_path) if line["kind"] == "replay"]
    assert replay["values"] == {"rows": resume_at - held, "steps": [held, resume_at - 1]}


def test_jsonl_history_takes_each_step_from_the_latest_attempt(tmp_path):
    for steps, offset in ((range(0, 6), 0.0), (range(3, 8), 10.0)):  # resumed from step 3
        with ExperimentLogger("p", "h", mode="disabled", dir=tmp_path, run_id="h1") as logger:
            for step in steps:
                logger.log_training_step(offset + step, 1e-3, 0.5, step=step)
                logger.log_validation_step(offset + step, 1.0, step=step)
    with (tmp_path / "logs" / "h1.jsonl").open("a") as handle:
        handle.write('{"kind": "metrics", "step": 9, "val')  # cut short by a SIGKILL
    rows = jsonl_history(tmp_path / "logs" / "h1.jsonl")
    assert [row["step"] for row in rows] == [s for s in range(8) for _ in ("train", "val")]
    assert [row.get("train/loss") for row in rows[::2]] == [0, 1, 2, 13, 14, 15, 16, 17]
    assert jsonl_history(tmp_path / "logs" / "missing.jsonl") == []
    # The wandb files held step 3's training row, and a table: its validation row is lost.
    held = [*rows[:7], {"samples/text_generation": {"_type": "table-file"}, "step": 7}]
    assert lost_rows(rows, held) == rows[7:]
    assert lost_rows(rows, []) == rows and lost_rows(rows, rows) == []
