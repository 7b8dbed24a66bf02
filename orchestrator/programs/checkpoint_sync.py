"""A trial's checkpoints on the node that runs it, kept in the spec's `checkpoints:` store.

Without a store, a program checkpoints into the trial's directory, as it always has. With
one, it checkpoints into a folder of this node's own (`$ORCHESTRATE_LOCAL_CHECKPOINTS`, else
the system's temporary directory, then `<sweep>/<uid>/<trial>`): before the program starts,
the store's latest version is downloaded there (the store wins over what the folder holds:
a trial retried on another node resumes from what the dead node last uploaded); while it
runs, a thread uploads the folder as a new version whenever its files change (woken by each
report, and every few seconds); when it returns, a last upload, so a finished or stopped
trial's last checkpoint is in the store before the trial ends (and the local folder is
removed: a later start, here or elsewhere, downloads it again).

What a version holds is the folder's files, each as it was when it was linked into a staging
folder; names starting with `.` or ending in `.tmp` are a write in progress and left out. So
a program writes each checkpoint file whole and renames it into place, as the trainer does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from orchestrator.programs.checkpoint_store import CheckpointStore, Pointer, TrialStore, first_line

LOCAL_ROOT_ENV = "ORCHESTRATE_LOCAL_CHECKPOINTS"
POLL_SECONDS = 2.0

Signature = dict[str, tuple[int, int, int]]  # relative path -> (size, mtime_ns, inode)


def local_root() -> Path:
    """This node's root for checkpoints being written (never the controller's run dir)."""
    root = os.environ.get(LOCAL_ROOT_ENV) or Path(tempfile.gettempdir(), "orchestrate-checkpoints")
    return Path(root).expanduser()


class CheckpointSync:
    """One trial's local checkpoint folder, uploaded to its store folder as it changes."""

    def __init__(self, place: TrialStore, root: Path | None = None):
        self.store = CheckpointStore(place.uri, place.keep)
        self.dir = (root or local_root()) / place.key
        self.staging = self.dir.with_name(f".{self.dir.name}.staging")
        self.writer = f"{socket.gethostname()}:{os.getpid()}"
        self.uploaded: Signature = {}
        self.restored: Pointer | None = None
        self.last: Pointer | None = None
        self.lock = threading.Lock()  # one upload at a time
        self.wake, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._watch, name="checkpoint-sync", daemon=True)

    def restore(self) -> Pointer | None:
        """The store's latest version into the local folder (None: the store has none)."""
        self.restored = self.store.download(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.restored is not None:
            self.uploaded = signature(self.dir)
        return self.restored

    def start(self) -> None:
        self.thread.start()

    def poke(self) -> None:
        """The program reported: look for a new checkpoint now."""
        self.wake.set()

    def sync(self) -> Pointer | None:
        """Upload the folder as a new version when it changed since the last upload."""
        with self.lock:
            current = signature(self.dir)
            if not current or current == self.uploaded:
                return None
            stage(self.dir, self.staging, current)  # the files as they are now
            self.last = self.store.upload(self.staging, self.writer)
            self.uploaded = current  # a file replaced while staging differs: the next sync
            return self.last

    def close(self, upload: bool = True) -> None:
        """Stop watching; then the last upload (its error raised, with `upload`)."""
        self.done.set()
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join()
        try:
            if upload:
                self.sync()
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)

    def _watch(self) -> None:
        said = None  # the last failure printed: a store that is away is said once
        while not self.done.is_set():
            self.wake.wait(POLL_SECONDS)
            self.wake.clear()
            if self.done.is_set():
                return
            try:
                self.sync()
                said = None
            except Exception as error:  # the store is away for now: try again at the next
                line = f"checkpoints: upload to {self.store.uri} failed: {first_line(error)}"
                if line != said:
                    print(line, flush=True)
                said = line


@contextlib.contextmanager
def synced(place: TrialStore | None, trial_dir: Path) -> Iterator[CheckpointSync | None]:
    """The trial's checkpoints kept in the store while the block runs (None: no store, the
    program checkpoints into `trial_dir`). The last upload's error is the trial's error;
    after the block's own error it is printed, and the block's error goes on."""
    if place is None:
        yield None
        return
    sync = CheckpointSync(place)
    pointer = sync.restore()
    if pointer is not None:
        print(f"checkpoints: resumed from v{pointer.version:06d} of {place.uri}", flush=True)
    sync.start()
    try:
        yield sync
    except BaseException:
        try:
            sync.close()
        except Exception as error:
            print(f"checkpoints: last upload to {place.uri} failed: {first_line(error)}")
        raise
    try:
        sync.close()
    except Exception as error:
        message = f"checkpoints: last upload to {place.uri} failed: {first_line(error)}"
        raise OSError(message) from error
    shutil.rmtree(sync.dir, ignore_errors=True)  # all of it is in the store now


def signature(folder: Path) -> Signature:
    """The checkpoint files in `folder` (no `.name` or `*.tmp`): a new one changes it."""
    found: Signature = {}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(p.startswith(".") or p.endswith(".tmp") for p in relative.parts):
            continue
        with contextlib.suppress(FileNotFoundError):  # replaced or removed while we look
            if path.is_file():
                stat = path.stat()
                found[str(relative)] = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    return found


def stage(folder: Path, staging: Path, files: Signature) -> None:
    """Hard-link (else copy) `files` of `folder` into an empty `staging` folder: a file the
    program replaces later stays as it was here."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in files:
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(folder / name, target)
        except FileNotFoundError:
            continue
        except OSError:
            shutil.copy2(folder / name, target)
