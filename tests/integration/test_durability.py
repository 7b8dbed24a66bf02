"""Durability and containment at the CLI: a journal torn by a write cut short is set aside
and the sweep goes on; a damaged record, a place that cannot hold the sweep and a full disk
under the report are each one line, never a traceback, and the trials' records stay whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_spec

from orchestrator import store

SWEEP = """
    name: {name}
    method: grid
    program: sweep_programs:noop
    metric: {{name: loss, goal: minimize}}
    wandb: {{mode: disabled}}
    parameters:
      x: {{values: [1, 2, 3]}}
"""


def orchestrate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line(out: subprocess.CompletedProcess) -> str:
    """The only line on stderr (and no traceback)."""
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def run_sweep(tmp_path: Path, name: str) -> Path:
    spec = write_spec(tmp_path, SWEEP.format(name=name))
    out = orchestrate("run", str(spec), "--runs", str(tmp_path / "runs"), "--num-cpus", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    return tmp_path / "runs" / name


def complete(run_dir: Path) -> int:
    return [t["state"] for t in json.loads((run_dir / "results.json").read_text())].count(
        "complete"
    )


def test_a_torn_last_record_is_set_aside_and_resume_goes_on(tmp_path):
    run_dir = run_sweep(tmp_path, "torn")
    journal = run_dir / store.JOURNAL_NAME
    data = journal.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = start + (len(data) - start) // 2  # the last trial's `tell`, cut in half
    journal.write_bytes(data[:cut])

    status = orchestrate("status", str(run_dir))
    assert status.returncode == 0
    assert "left out here, and set aside when the sweep is resumed" in one_line(status)

    resume = orchestrate("resume", str(run_dir), "--num-cpus", "1")
    assert resume.returncode == 0, resume.stdout + resume.stderr
    (side,) = run_dir.glob(store.JOURNAL_NAME + ".torn-*")
    notes = [line for line in resume.stderr.splitlines() if line.startswith("warning: ")]
    assert notes == [
        f"warning: {journal}: its last record was cut short (a write that did not finish, "
        f"{cut - start} bytes); set aside in {side}, the store goes on without it"
    ]
    assert "Traceback" not in resume.stderr
    assert side.read_bytes() == data[start:cut]
    assert complete(run_dir) == 3  # the torn trial ran again

    for command in (["status", str(run_dir)], ["report", str(run_dir)]):
        out = orchestrate(*command)
        assert out.returncode == 0 and out.stderr == "", out.stderr


def test_a_damaged_record_before_the_end_is_one_line_and_nothing_is_written(tmp_path):
    run_dir = run_sweep(tmp_path, "damaged")
    journal = run_dir / store.JOURNAL_NAME
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[9] = lines[9][:30] + b"\n"
    journal.write_bytes(b"".join(lines))
    before = journal.read_bytes()

    for command in (["status", str(run_dir)], ["resume", str(run_dir), "--num-cpus", "1"]):
        out = orchestrate(*command)
        assert out.returncode == 2
        assert one_line(out).startswith(f"{journal}:10: a damaged record (not JSON: ")
        assert journal.read_bytes() == before


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("storage", "/dev/null/x.journal: cannot open the sweep's journal (File exists)"),
        ("runs-a-file", "/etc/passwd/placed: cannot write the sweep's folder here"),
        ("runs-not-writable", "/sys/placed: cannot write the sweep's folder here"),
    ],
)
def test_a_place_that_cannot_hold_the_sweep_is_one_line(tmp_path, where, named):
    text = SWEEP.format(name="placed")
    if where == "storage":
        text += "    storage: /dev/null/x.journal\n"
    runs = {"storage": str(tmp_path / "runs"), "runs-a-file": "/etc/passwd"}.get(where, "/sys")
    out = orchestrate("run", str(write_spec(tmp_path, text)), "--runs", runs, "--num-cpus", "1")
    assert out.returncode == 2
    assert one_line(out).startswith(named)
    assert not list(tmp_path.glob("runs/*/trials"))  # nothing ran


def test_a_full_disk_under_the_report_leaves_the_records_and_says_so(tmp_path):
    run_dir = tmp_path / "runs" / "full"
    (run_dir / "report").mkdir(parents=True)
    (run_dir / "report" / "report.md").symlink_to("/dev/full")  # every write: ENOSPC
    spec = write_spec(tmp_path, SWEEP.format(name="full"))

    said = (
        f"report not written: {run_dir / 'report'}: No space left on device; the trials' "
        f"records are intact; once it can be written, `orchestrate report {run_dir}`"
    )
    out = orchestrate("run", str(spec), "--runs", str(tmp_path / "runs"), "--num-cpus", "1")
    assert out.returncode == 0  # the sweep's own code: its trials completed and are recorded
    assert one_line(out) == said
    assert complete(run_dir) == 3
    trials = store.load_study(store.read_sweep_file(run_dir)).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3

    again = orchestrate("report", str(run_dir))
    assert again.returncode == 1  # making the report was all `report` was asked to do
    assert one_line(again) == said
    assert complete(run_dir) == 3
