"""Read wandb's offline transaction logs (`run-<id>.wandb`) back into protobuf records.

wandb writes every record of a run (config, history rows, summary updates, artifacts, exit)
to one file per `wandb.init`, and `wandb sync` later replays it to the server. Reading the
same file back is how the tests check what a run recorded, how the end-of-sweep report gets
its curves without a server, and how a user's own training script is followed while it runs.

File layout, as wandb 0.31 (wandb-core) writes it: a 7-byte file header (`:W&B`, magic 0xBEE1
little-endian, version 0), then the leveldb log format: 32 KiB blocks of chunks, each chunk a
7-byte header (crc32 of type byte + data | uint16 length | uint8 type) and its data; a record
too long for the rest of a block is split into FIRST, MIDDLE..., LAST chunks; fewer than 7
bytes left in a block are zero padding. The file header counts towards the first block.
wandb-core writes through a 32 KiB buffer, so a live file grows mostly a block at a time
(measured: nothing past the header until 32 KiB of records, an unaligned flush only every
~20 s) and may end inside a record: `RecordFollower` waits for the rest. `Run.finish()` may return before the
file is complete (seen offline: still only the file header); `wait_for_exit_record` waits.

Resumed runs: reopening the same run id offline (`resume="allow"`) does NOT append to the old
file; wandb 0.31 starts a new run directory (`offline-run-<time>-<id>`, with `-1`, `-2`, ...
appended when the second is the same) with its own file, whose history restarts at `_step`
0 unless the caller passes explicit steps. `read_run_history` / `summarize_run` therefore merge
all files of one run id in order of their start time, as `wandb sync` does.
"""

from __future__ import annotations

import json
import logging
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # wandb's import takes a second: made by the first read (`_decode`)
    from wandb.proto.wandb_internal_pb2 import Record

log = logging.getLogger(__name__)

FILE_HEADER = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)
BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")  # crc32, data length, chunk type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class WandbLogError(ValueError):
    """A `.wandb` file that is not a wandb transaction log, or is corrupt before its tail."""


def _check_file_header(path: Path, data: bytes) -> None:
    if data[: len(FILE_HEADER)] != FILE_HEADER:
        raise WandbLogError(
            f"{path}: not a wandb transaction log (header {data[:7]!r}, expected {FILE_HEADER!r})"
        )


def _parse(path: Path, data: bytes, base: int) -> tuple[list[bytes], int]:
    """Complete records in `data`, which starts at byte `base` of the file, and the file offset
    just after the last of them.

    `base` must be a record boundary. Stops without error at a chunk or multi-chunk record that
    the file does not yet hold in full (the tail of a live or killed run); raises on a checksum
    or framing error before it.
    """
    records: list[bytes] = []
    end = base + len(data)
    pos = base  # absolute file offset: block alignment is relative to the file's start
    resume_at = base  # where the next unread record begins
    pending: list[bytes] | None = None  # chunks of a FIRST..LAST record being assembled
    while True:
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < CHUNK_HEADER.size:
            pos += left_in_block  # zero trailer of the block
            if pending is None:
                resume_at = min(pos, end)
            continue
        if pos + CHUNK_HEADER.size > end:
            break
        crc, length, kind = CHUNK_HEADER.unpack_from(data, pos - base)
        start = pos - base + CHUNK_HEADER.size
        if start + length > len(data):
            break
        if crc == 0 and length == 0 and kind == 0:
            break  # preallocated zeros: nothing written past here yet
        body = data[start : start + length]
        if zlib.crc32(body, zlib.crc32(bytes([kind]))) != crc:
            raise WandbLogError(f"{path}: checksum mismatch in the chunk at byte {pos}")
        pos += CHUNK_HEADER.size + length
        if kind == FULL and pending is None:
            records.append(body)
        elif kind == FIRST and pending is None:
            pending = [body]
        elif kind == MIDDLE and pending is not None:
            pending.append(body)
        elif kind == LAST and pending is not None:
            records.append(b"".join([*pending, body]))
            pending = None
        else:
            raise WandbLogError(f"{path}: chunk of type {kind} out of order at byte {pos}")
        if pending is None:
            resume_at = pos
    return records, resume_at


def _decode(path: Path, raw: bytes) -> Record:
    from wandb.proto.wandb_internal_pb2 import Record

    record = Record()
    try:
        record.ParseFromString(raw)
    except Exception as error:  # protobuf's DecodeError, kept out of the public signature
        raise WandbLogError(f"{path}: undecodable record: {error}") from error
    return record


def read_records(path: str | Path) -> Iterator[Record]:
    """Every complete record of one `.wandb` file, in the order wandb wrote them."""
    path = Path(path)
    data = path.read_bytes()
    _check_file_header(path, data)
    raws, _ = _parse(path, data[len(FILE_HEADER) :], len(FILE_HEADER))
    for raw in raws:
        yield _decode(path, raw)


class RecordFollower:
    """Follows a `.wandb` file while its run writes it: each `poll()` returns the new records.

    A missing or still-empty file, and a record the file holds only part of, are not errors:
    they come back on a later poll once wandb has written them.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._offset = 0  # byte offset of the first record not yet returned

    def poll(self) -> list[Record]:
        """Records appended since the last poll (possibly none)."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        if self._offset == 0:
            if len(data) < len(FILE_HEADER):
                return []
            _check_file_header(self.path, data)
            self._offset = len(FILE_HEADER)
            data = data[len(FILE_HEADER) :]
        raws, self._offset = _parse(self.path, data, self._offset)
        return [_decode(self.path, raw) for raw in raws]


@dataclass
class RunRecord:
    """What one wandb run recorded, read back from its `.wandb` file(s)."""

    run_id: str
    name: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # name, type, aliases, metadata
    exit_code: int | None = None  # None: the run never finished (killed, or still running)
    files: list[Path] = field(default_factory=list)  # the .wandb files, oldest first

    def table(self, key: str) -> list[dict[str, Any]]:
        """Rows of the last wandb Table logged under `key`, as dicts keyed by column."""
        for row in reversed(self.history):
            ref = row.get(key)
            if isinstance(ref, dict) and ref.get("_type") == "table-file":
                for wandb_file in reversed(self.files):
                    table_path = wandb_file.parent / "files" / ref["path"]
                    if table_path.exists():
                        table = json.loads(table_path.read_text())
                        return [dict(zip(table["columns"], r, strict=True)) for r in table["data"]]
                raise FileNotFoundError(f"table {key!r} ({ref['path']}) is not in {self.files}")
        raise KeyError(f"no table {key!r} in the history of run {self.run_id}")

    def metric(self, key: str) -> list[Any]:
        """The values of one history key, in order, from the rows that have it."""
        return [row[key] for row in self.history if key in row]


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _drop_path(target: dict[str, Any], path: list[str]) -> None:
    for part in path[:-1]:
        target = target.get(part, {})
    target.pop(path[-1], None)


def _item_path(item: Any) -> list[str]:
    return list(item.nested_key) or [item.key]


def _apply(run: RunRecord, record: Record) -> None:
    kind = record.WhichOneof("record_type")
    if kind == "run":
        r = record.run  # a resumed run's later files may leave fields empty: keep the earlier
        run.run_id = r.run_id
        run.name, run.project = r.display_name or run.name, r.project or run.project
        run.entity = r.entity or run.entity
        run.group, run.job_type = r.run_group or run.group, r.job_type or run.job_type
        run.notes, run.tags = r.notes or run.notes, list(r.tags) or run.tags
        _apply_updates(run.config, r.config.update, r.config.remove)
    elif kind == "config":
        _apply_updates(run.config, record.config.update, record.config.remove)
    elif kind == "history":
        row: dict[str, Any] = {}
        for item in record.history.item:
            _set_path(row, _item_path(item), json.loads(item.value_json))
        run.history.append(row)
    elif kind == "summary":
        _apply_updates(run.summary, record.summary.update, record.summary.remove)
    elif kind == "artifact":
        a = record.artifact
        metadata = json.loads(a.metadata) if a.metadata else {}
        run.artifacts.append(
            {"name": a.name, "type": a.type, "aliases": list(a.aliases), "metadata": metadata}
        )
    elif kind == "exit":
        run.exit_code = record.exit.exit_code


def _apply_updates(target: dict[str, Any], updates: Any, removes: Any) -> None:
    for item in updates:
        _set_path(target, _item_path(item), json.loads(item.value_json))
    for item in removes:
        _drop_path(target, _item_path(item))


def _start_time(path: Path) -> tuple[float, str]:
    for record in read_records(path):
        if record.WhichOneof("record_type") == "run":
            start = record.run.start_time
            return start.seconds + start.nanos / 1e9, str(path)
    return float("inf"), str(path)


def summarize_run(paths: str | Path | list[Path]) -> RunRecord:
    """One run read back from its `.wandb` file, or from all files of a resumed run.

    Several files are merged oldest first: config and summary updates apply in order, history
    rows are concatenated, the exit code is the last file's that holds any record.
    """
    files = [Path(paths)] if isinstance(paths, str | Path) else list(paths)
    if not files:
        raise ValueError("summarize_run needs at least one .wandb file")
    files.sort(key=_start_time)
    run = RunRecord(run_id="", files=files)
    for path in files:
        records = list(read_records(path))
        if records:  # a killed run's file may hold no record: it says nothing (sorted last)
            run.exit_code = None
        for record in records:
            _apply(run, record)
    run.config.pop("_wandb", None)
    return run


def find_run_files(wandb_dir: str | Path, run_id: str = "*") -> list[Path]:
    """The `.wandb` files under a wandb directory (`<dir>/wandb`), of all runs or of one id.

    Follows no symlinks (`latest-run` would list a run twice).
    """
    return [
        path
        for path in sorted(Path(wandb_dir).glob(f"*run-*/run-{run_id}.wandb"))
        if not path.parent.is_symlink()
    ]


def read_run_history(wandb_dir: str | Path, run_id: str) -> RunRecord:
    """The run `run_id` under `wandb_dir`, merged over every file it was resumed into."""
    files = find_run_files(wandb_dir, run_id)
    if not files:
        raise FileNotFoundError(f"no wandb run {run_id!r} under {wandb_dir}")
    return summarize_run(files)


def wait_for_exit_record(run_file: Path, timeout_s: float = 30.0) -> None:
    """Wait until wandb has written the run's exit record to its `.wandb` file.

    wandb 0.31's `Run.finish()` can return before its service has flushed the transaction
    log (seen offline: the file still held only its 7-byte header), and whoever reads the run
    next (the controller, the report, a test) must find it complete.
    """
    follower = RecordFollower(run_file)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if any(r.WhichOneof("record_type") == "exit" for r in follower.poll()):
                return
        except WandbLogError as error:
            log.warning("cannot read %s back: %s", run_file, error)
            return
        time.sleep(0.01)
    log.warning("wandb had not written the end of %s after %.0f s", run_file, timeout_s)
