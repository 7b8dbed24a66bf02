"""A journal damaged by a write cut short: a torn last line is set aside (kept in a side file)
and the store goes on; a damaged line with records after it is a clear error, and nothing is
written. Real journals made by Optuna, damaged by cutting and appending bytes."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from orchestrator import store
from orchestrator.errors import UserError, UserNotice


def make_journal(run_dir: Path, trials: int = 3) -> Path:
    """A sweep's default journal holding `trials` complete trials."""
    with no_notice():
        study = optuna.create_study(storage=store.open_storage(None, run_dir), study_name="s")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=trials)
    return run_dir / store.JOURNAL_NAME


@contextmanager
def no_notice() -> Iterator[None]:
    """Fail on any UserNotice: a whole journal is opened without a word."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserNotice)
        yield


def open_study(run_dir: Path, writer: bool = True) -> optuna.Study:
    storage = store.open_storage(None, run_dir, writer=writer)
    return optuna.load_study(study_name="s", storage=storage)


def states(study: optuna.Study) -> list[TrialState]:
    return [t.state for t in study.get_trials()]


def side_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob(store.JOURNAL_NAME + ".torn-*"))


def cut_last_line_in_half(path: Path) -> bytes:
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = start + (len(data) - start) // 2
    path.write_bytes(data[:cut])
    return data[start:cut]


def append(path: Path, garbage: bytes) -> bytes:
    with path.open("ab") as handle:
        handle.write(garbage)
    return garbage


@pytest.mark.parametrize(
    ("damage", "complete"),
    [
        (cut_last_line_in_half, 2),  # the last trial's `tell` is torn: it is running again
        (lambda path: append(path, b"garbage\n"), 3),
        (lambda path: append(path, b'{"op_code":6,"trial_'), 3),
    ],
    ids=["cut-in-half", "garbage-line", "half-a-record"],
)
def test_a_torn_last_line_is_set_aside_and_the_store_goes_on(tmp_path, damage, complete):
    path = make_journal(tmp_path)
    torn = damage(path)
    whole = path.read_bytes()[: -len(torn)]

    with pytest.warns(UserNotice) as noted:
        study = open_study(tmp_path)
    (side,) = side_files(tmp_path)
    (note,) = [str(w.message) for w in noted]
    assert f"{path}: its last record was cut short" in note and f"set aside in {side}" in note
    assert side.read_bytes() == torn
    assert path.read_bytes() == whole
    assert states(study).count(TrialState.COMPLETE) == complete

    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    for line in path.read_bytes().splitlines():
        json.loads(line)
    with no_notice():
        again = open_study(tmp_path)
    assert states(again).count(TrialState.COMPLETE) == complete + 1
    assert side.read_bytes() == torn  # kept as it was


def test_a_reader_leaves_a_torn_line_out_and_writes_nothing(tmp_path):
    path = make_journal(tmp_path)
    cut_last_line_in_half(path)
    before = path.read_bytes()
    with pytest.warns(UserNotice, match="left out here, and set aside when the sweep is resumed"):
        study = open_study(tmp_path, writer=False)
    assert states(study).count(TrialState.COMPLETE) == 2
    assert path.read_bytes() == before and not side_files(tmp_path)


def damage_line(path: Path, number: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[number - 1] = lines[number - 1][:40] + b"\n"
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("writer", [True, False], ids=["writer", "reader"])
def test_a_damaged_line_before_the_end_is_an_error_naming_it_and_nothing_is_written(
    tmp_path, writer
):
    path = make_journal(tmp_path)
    damage_line(path, 5)
    before = path.read_bytes()
    with pytest.raises(UserError) as raised:
        open_study(tmp_path, writer=writer)
    (line,) = raised.value.lines
    assert line.startswith(f"{path}:5: a damaged record (not JSON: ")
    assert f"sed -n 5p {path} >> {path}.damaged && sed -i 5d {path}" in line
    assert path.read_bytes() == before and not side_files(tmp_path)


def test_two_bad_lines_at_the_end_are_no_torn_write_and_are_left_for_a_person(tmp_path):
    path = make_journal(tmp_path)
    append(path, b"garbage\nmore garbage\n")
    before = path.read_bytes()
    number = before.count(b"\n") - 1
    with pytest.raises(UserError, match=f"^{path}:{number}: a damaged record"):
        open_study(tmp_path)
    assert path.read_bytes() == before and not side_files(tmp_path)


def test_a_journal_in_a_place_that_cannot_hold_it_is_one_line(tmp_path):
    with pytest.raises(UserError) as raised:
        store.open_storage("/dev/null/x.journal", tmp_path)
    assert raised.value.lines == [
        "/dev/null/x.journal: cannot open the sweep's journal (File exists); "
        "give `storage:` a file in a folder you can write"
    ]
