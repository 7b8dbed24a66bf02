"""Reading wandb's offline transaction log back: one real offline run, written by wandb itself."""

from __future__ import annotations

import pytest
import wandb

from orchestrator.tracking.wandb_records import (
    BLOCK_SIZE,
    RecordFollower,
    WandbLogError,
    find_run_files,
    read_records,
    summarize_run,
    wait_for_exit_record,
)

LONG_TEXT = "0123456789abcdef" * 5000  # 80 kB: one record in FIRST, MIDDLE..., LAST chunks


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    """A finished offline run with known contents, written by wandb 0.31 directly."""
    directory = tmp_path_factory.mktemp("records")
    run = wandb.init(
        project="records",
        name="reader-check",
        group="g1",
        job_type="trial",
        tags=["alpha", "beta"],
        notes="written for the reader",
        config={"lr": 0.001, "model": {"d_model": 64, "layers": [1, 2]}},
        mode="offline",
        dir=str(directory),
        id="readtest",
        reinit="create_new",
    )
    for i in range(300):
        run.log({"loss": 1.0 / (i + 1), "i": i})
    run.log({"long": LONG_TEXT})
    run.summary["best"] = 0.25
    run.finish(exit_code=3)
    (file,) = find_run_files(directory / "wandb")  # the `latest-run` symlink is not followed
    # finish() can return before wandb's service has written the last records (in CI: the
    # last history row was missing); the product's logger waits the same way.
    wait_for_exit_record(file)
    return file


def test_summarize_run_reads_back_what_wandb_wrote(run_file):
    run = summarize_run(run_file)
    assert (run.run_id, run.name, run.project) == ("readtest", "reader-check", "records")
    assert (run.group, run.job_type, run.notes) == ("g1", "trial", "written for the reader")
    assert run.tags == ["alpha", "beta"]
    assert run.config == {"lr": 0.001, "model": {"d_model": 64, "layers": [1, 2]}}
    assert len(run.history) == 301
    assert run.metric("i") == list(range(300))
    assert run.metric("loss")[9] == pytest.approx(0.1)
    assert [row["_step"] for row in run.history] == list(range(301))
    assert run.history[-1]["long"] == LONG_TEXT  # reassembled across blocks
    assert run.summary["best"] == 0.25 and run.summary["i"] == 299
    assert run.exit_code == 3


def test_file_spans_several_blocks(run_file):
    assert run_file.stat().st_size > 3 * BLOCK_SIZE


def test_follower_returns_every_record_once_whatever_the_cut_points(run_file, tmp_path):
    data = run_file.read_bytes()
    expected = [r.SerializeToString() for r in read_records(run_file)]
    # Cut inside the file header, around every block boundary, and at odd places between.
    cuts = {3, 7, 8, 20, 1000, len(data)}
    for block in range(BLOCK_SIZE, len(data), BLOCK_SIZE):
        cuts |= {block - 8, block - 7, block - 3, block, block + 3, block + 7, block + 8}
    cuts |= set(range(50_000, len(data), 7_919))
    live = tmp_path / "live.wandb"
    follower = RecordFollower(live)
    assert follower.poll() == []  # not created yet
    got = []
    with live.open("wb") as out:
        written = 0
        for cut in sorted(c for c in cuts if c <= len(data)):
            out.write(data[written:cut])
            out.flush()
            written = cut
            got += [r.SerializeToString() for r in follower.poll()]
    assert got == expected
    assert follower.poll() == []


def test_truncated_file_reads_its_complete_records(run_file, tmp_path):
    data = run_file.read_bytes()
    cut = tmp_path / "killed.wandb"
    cut.write_bytes(data[: 2 * BLOCK_SIZE + 100])
    run = summarize_run(cut)
    assert run.name == "reader-check"
    assert 0 < len(run.history) < 300
    assert run.metric("i") == list(range(len(run.history)))
    assert run.exit_code is None  # never finished


def test_corruption_and_foreign_files_raise_naming_the_file(run_file, tmp_path):
    data = bytearray(run_file.read_bytes())
    data[data.find(LONG_TEXT[:64].encode()) + 20] ^= 0xFF  # inside a chunk's data, not a header
    corrupt = tmp_path / "corrupt.wandb"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(WandbLogError, match="corrupt.wandb: checksum mismatch"):
        list(read_records(corrupt))
    foreign = tmp_path / "foreign.wandb"
    foreign.write_bytes(b"PK\x03\x04 not a wandb file")
    with pytest.raises(WandbLogError, match="foreign.wandb: not a wandb transaction log"):
        list(read_records(foreign))
