"""A trial's captured output: `output.log` in its directory, secrets redacted, size capped.

Whatever a program prints (a script's stdout and stderr; an in-process program's
`sys.stdout` and `sys.stderr` while it runs) goes through an `OutputLog`: line by line, each
known secret value is replaced by `<redacted>`; the first HEAD_BYTES are written as they come
and only the last TAIL_BYTES are kept after that, written when the trial ends below a line
saying how much was left out. So a program that prints 200 MB costs about 2 MiB of disk and
no time after it returns. Each attempt of a trial (a retry) appends its own capped part.
"""

from __future__ import annotations

import collections
import io
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.tracking.redact import redact_text

OUTPUT_FILE = "output.log"
HEAD_BYTES = 1 << 20  # the first MiB of a trial's output is kept...
TAIL_BYTES = 1 << 20  # ...and the last MiB
LINE_BYTES = 64 << 10  # a longer line is cut into pieces of this size


class OutputLog:
    """A trial's output file, written through the redaction and the cap (module docstring).
    Thread-safe: a program's threads may print at once."""

    def __init__(self, path: Path, secrets: Iterable[str]):
        self.path = Path(path)
        self.secrets = [secret.encode() for secret in secrets]
        self.file = self.path.open("ab")
        self.head_left = HEAD_BYTES
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_bytes = 0
        self.left_out = 0  # bytes dropped from between the head and the tail
        self.partial = b""  # the line being printed, until its newline
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """Take output as it comes; complete lines are redacted and kept or dropped."""
        with self.lock:
            if self.file.closed:  # a grandchild of a script that still writes: too late
                return
            *lines, self.partial = (self.partial + data).split(b"\n")
            for line in lines:
                self._keep(line + b"\n")
            while len(self.partial) > LINE_BYTES:
                self._keep(self.partial[:LINE_BYTES])
                self.partial = self.partial[LINE_BYTES:]

    def close(self) -> None:
        """Write the last line, the note on what was left out and the tail; close the file."""
        with self.lock:
            if self.file.closed:
                return
            if self.partial:
                self._keep(self.partial + b"\n")
                self.partial = b""
            if self.left_out:
                note = f"[... {self.left_out} bytes of output left out ...]\n"
                self.file.write(note.encode())
            self.file.writelines(self.tail)
            self.tail.clear()
            self.file.close()

    def _keep(self, line: bytes) -> None:
        line = redact_text(line, self.secrets)
        if len(line) <= self.head_left:
            self.head_left -= len(line)
            self.file.write(line)
            self.file.flush()
            return
        self.head_left = 0  # the head is complete: later lines go to the tail only
        self.tail.append(line)
        self.tail_bytes += len(line)
        while self.tail_bytes > TAIL_BYTES:
            dropped = self.tail.popleft()
            self.tail_bytes -= len(dropped)
            self.left_out += len(dropped)


class _Bytes(io.RawIOBase):
    """The `buffer` of a _Stream: bytes written straight into the OutputLog."""

    def __init__(self, log: OutputLog):
        self.log = log

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.log.write(bytes(data))
        return len(data)


class _Stream(io.TextIOBase):
    """A text stream (`sys.stdout`, `sys.stderr`) that writes into an OutputLog."""

    def __init__(self, log: OutputLog):
        self.log = log
        self.buffer = _Bytes(log)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text.encode(errors="replace"))
        return len(text)


@contextmanager
def captured_output(path: Path, secrets: Iterable[str]) -> Iterator[OutputLog]:
    """Python's `sys.stdout` and `sys.stderr` into an OutputLog at `path` while the block runs
    (an in-process program's prints; what C code writes to the descriptors is not seen)."""
    log = OutputLog(path, secrets)
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = _Stream(log)
    try:
        yield log
    finally:
        sys.stdout, sys.stderr = saved
        log.close()
