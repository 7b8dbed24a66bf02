"""The store's storage: an Optuna journal file by default, or any Optuna storage URL.

Default: `runs/<sweep>/study.journal` (measured on 2 cores about 8x faster than SQLite);
`storage:` in a spec names another journal file or an Optuna URL (`sqlite:///...`,
`postgresql://...`).

A journal is one JSON record a line. A write cut short (a crash, a full disk) leaves a torn
last line; Optuna's reader skips it, but the next append would glue a record onto it and
from then on no reader could get past that line. So a writer's open sets a torn last line
aside (into `study.journal.torn-<time>`, next to the journal) before it writes, a reader
leaves it out, and both say so in one line (a `UserNotice`). A damaged line with records
after it is a `UserError` naming the line, raised before anything is written.
"""

from __future__ import annotations

import json
import os
import shlex
import time
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any, BinaryIO

import optuna
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import get_lock_file

from orchestrator.errors import UserError, UserNotice
from orchestrator.store.database import open_database
from orchestrator.store.sweep_file import SweepFile

JOURNAL_NAME = "study.journal"
TORN_SUFFIX = ".torn-"  # study.journal.torn-20250102T030405Z: what a writer's open set aside
_CHUNK = 65536  # how far back at a time to look for the last line's start

optuna.logging.set_verbosity(optuna.logging.WARNING)


class JournalFile(JournalFileBackend):
    """Optuna's journal file, without an fsync on every write, and with its damage explained.

    Each write is still one append under the journal's lock, so no reader sees half a
    record, and what a process wrote stays when it is killed (the kernel holds it): the
    controller or a worker dying loses nothing. Only a machine crash can drop the last
    writes. The fsync costs more than everything else a trial does to the store (measured:
    1.5 ms of ~2 ms per write on 2 cores), so it is off unless ORCHESTRATE_JOURNAL_FSYNC=1.
    """

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        """Optuna's reader; a damaged line it cannot get past is a `UserError` naming it."""
        try:
            yield from super().read_logs(log_number_from)
        except ValueError:  # Optuna re-raises json's error (a ValueError) at the next line
            raise UserError(damage_message(Path(self._file_path))) from None

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if os.environ.get("ORCHESTRATE_JOURNAL_FSYNC") == "1":
            return super().append_logs(logs)
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        with get_lock_file(self._lock), open(self._file_path, "ab") as handle:
            handle.write(data.encode("utf-8"))

    def set_aside_torn_tail(self) -> str | None:
        """Before a writer's first write: move a torn last line into a side file next to the
        journal (appended, never overwritten) and cut the journal back to its last whole
        record, under the journal's lock (so no other writer is half-way through a line).
        Returns the line to tell the user, or None when the journal ended whole."""
        path = Path(self._file_path)
        with get_lock_file(self._lock), open(path, "r+b") as journal:
            start, tail = torn_tail(journal)
            if not tail:
                return None
            if start and not_a_record(_line_before(journal, start)):
                raise UserError(damage_message(path))  # more than a torn write: by hand
            side = path.with_name(path.name + TORN_SUFFIX + time.strftime("%Y%m%dT%H%M%SZ"))
            with open(side, "ab") as kept:
                kept.write(tail)
                kept.flush()
                os.fsync(kept.fileno())
            journal.truncate(start)
            journal.flush()
            os.fsync(journal.fileno())
        return (
            f"{path}: its last record was cut short (a write that did not finish, "
            f"{len(tail)} bytes); set aside in {side}, the store goes on without it"
        )


def not_a_record(line: bytes) -> str | None:
    """Why a journal line is no whole record (cut short, not JSON, not Optuna's), or None."""
    if not line.endswith(b"\n"):
        return "cut short: no newline at its end"
    try:
        log = json.loads(line)
    except ValueError as error:  # JSONDecodeError, and UnicodeDecodeError for bad bytes
        return f"not JSON: {error}"
    if not isinstance(log, dict) or "op_code" not in log:
        return "not an Optuna journal record"
    return None


def torn_tail(journal: BinaryIO) -> tuple[int, bytes]:
    """Where the journal's last line starts, and that line if it is torn (else b"")."""
    size = journal.seek(0, os.SEEK_END)
    start = _line_start(journal, size)
    journal.seek(start)
    last = journal.read(size - start)
    return start, last if last and not_a_record(last) else b""


def _line_before(journal: BinaryIO, end: int) -> bytes:
    """The whole line that ends at byte `end` (just after its newline)."""
    start = _line_start(journal, end)
    journal.seek(start)
    return journal.read(end - start)


def _line_start(journal: BinaryIO, end: int) -> int:
    """Where the last line before byte `end` starts (a newline at `end - 1` ends it)."""
    stop = end - 1
    while stop > 0:
        begin = max(0, stop - _CHUNK)
        journal.seek(begin)
        at = journal.read(stop - begin).rfind(b"\n")
        if at >= 0:
            return begin + at + 1
        stop = begin
    return 0


def damaged_line(path: Path) -> tuple[int, str] | None:
    """The first line with records after it that is no record: its number (from 1) and why."""
    found = None
    with open(path, "rb") as journal:
        for number, line in enumerate(journal, start=1):
            if found:
                return found
            why = not_a_record(line)
            found = (number, why) if why else None
    return None


def damage_message(path: Path) -> str:
    """The one line for a journal damaged before its end: where, why, and what to do."""
    found = damaged_line(path)
    if found is None:
        return f"{path}: the journal is damaged; nothing was written to it"
    number, why = found
    quoted = shlex.quote(str(path))
    return (
        f"{path}:{number}: a damaged record ({why}) with records after it; nothing was "
        f"written. Move that line into a side file, then check with `orchestrate status`: "
        f"sed -n {number}p {quoted} >> {quoted}.damaged && sed -i {number}d {quoted}"
    )


def open_storage(storage: str | None, run_dir: Path, *, writer: bool = True) -> BaseStorage:
    """The spec's storage: an Optuna URL, a journal file path, or the default journal file.

    A writer's open sets a torn last journal line aside before anything is written; a
    reader (`writer=False`: status, report, `load_sweep`) writes nothing and leaves it out.
    Either way the user is told in one line. A journal that cannot be opened is a UserError.
    """
    if storage and "://" in storage:
        return open_database(storage)
    path = journal_path(storage, run_dir)
    try:
        if writer:
            path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFile(str(path))
        note = backend.set_aside_torn_tail() if writer else _reader_note(path)
    except OSError as error:
        where = "give `storage:` a file in a folder you can write" if storage else "check it"
        reason = error.strerror or str(error)
        raise UserError(f"{path}: cannot open the sweep's journal ({reason}); {where}") from None
    if note:
        warnings.warn(note, UserNotice, stacklevel=2)
    return JournalStorage(backend)


def _reader_note(path: Path) -> str | None:
    """What a reader tells of a torn last line, which Optuna's reader leaves out."""
    with open(path, "rb") as journal:
        _, tail = torn_tail(journal)
    if not tail:
        return None
    return (
        f"{path}: its last record was cut short (a write that did not finish, "
        f"{len(tail)} bytes); left out here, and set aside when the sweep is resumed"
    )


def storage_label(storage: str | None, run_dir: Path) -> str:
    """How the sweep file records the storage, so `status` and `resume` can reopen it."""
    if storage and "://" in storage:
        return storage
    return str(journal_path(storage, run_dir).resolve())


def journal_path(storage: str | None, run_dir: Path) -> Path:
    """The journal file of a spec's `storage:` path, or the default one in the sweep's dir."""
    return Path(storage) if storage else run_dir / JOURNAL_NAME


def load_study(info: SweepFile) -> optuna.Study:
    """Open an existing sweep's study to read it, from its sweep file (`open_storage`'s
    reader: it writes nothing, so it works while the sweep runs and on a read-only copy)."""
    storage = open_storage(info.storage, Path(info.run_dir), writer=False)
    return optuna.load_study(study_name=info.study_name, storage=storage)
