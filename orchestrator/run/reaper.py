"""When a controller that started its own local Ray is killed (kill -9, the OOM killer), what
it started goes with it.

Ray's head processes die with their driver, but the agents its raylet starts (DashboardAgent,
RuntimeEnvAgent) then wait about a minute on the dead GCS before they exit, and a trial's
subprocesses may outlive their worker. So a small process of its own watches the controller
through a pipe: while the controller lives it notes the controller's process tree every
second; when the pipe closes without a goodbye, it kills what is left of that tree, with what
started since the last note: every process that carries the controller's mark (an environment
variable set before it started Ray), which finds a Ray worker whose raylet died first and left
it to init (still importing on a loaded machine, it notices only when it is done), and the
children of any of them (a trial's wandb-core drops the mark, Ray's agents overwrite it with
their titles). Linux only (it reads /proc); elsewhere the watcher notes nothing and kills
nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

GOODBYE = b"bye\n"
NOTE_EVERY_SECONDS = 1.0
MARK = "ORCHESTRATE_CONTROLLER"


def mark_descendants() -> str:
    """Mark what this process starts from now on (its Ray, Ray's workers, a trial's
    subprocesses inherit the environment); returns the mark, unique to this process."""
    pid = os.getpid()
    stat = _stat(Path("/proc", str(pid)))
    os.environ[MARK] = f"{pid}:{stat[1] if stat else 0}"
    return os.environ[MARK]


def watch(pid: int) -> subprocess.Popen:
    """Start the watcher of process `pid` (the caller, marked by `mark_descendants`); hand it to
    `stop_watching` at a clean end."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.run.reaper", str(pid), os.environ.get(MARK, "")],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C at the terminal is the controller's, not its own
    )


def unmark() -> None:
    """What this process starts from now on is not marked (the undoing of `mark_descendants`)."""
    os.environ.pop(MARK, None)


def stop_watching(watcher: subprocess.Popen) -> None:
    """A clean end: the watcher leaves without killing anything, and what the caller starts
    from now on is not marked."""
    unmark()
    with contextlib.suppress(OSError):
        assert watcher.stdin is not None
        watcher.stdin.write(GOODBYE)
        watcher.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        watcher.wait(timeout=5)


def process_tree(root: int) -> dict[int, int]:
    """The descendants of `root` (not root itself), as pid -> start time (to tell a pid that
    was reused). Empty where there is no /proc."""
    return descendants({root})


def descendants(roots: set[int]) -> dict[int, int]:
    """The descendants of any of `roots` (not the roots themselves), as `process_tree`."""
    children: dict[int, list[tuple[int, int]]] = {}  # parent -> (pid, start time)
    for pid, parent, start, _ in _processes():
        children.setdefault(parent, []).append((pid, start))
    tree: dict[int, int] = {}
    frontier = list(roots)
    while frontier:
        for pid, start in children.get(frontier.pop(), []):
            if pid not in tree and pid not in roots:
                tree[pid] = start
                frontier.append(pid)
    return tree


def _signal(tree: dict[int, int], signal_number: int) -> None:
    """Send `signal_number` to each process of `tree` that is still the one noted."""
    for pid, start in tree.items():
        if still_running(pid, start):
            with contextlib.suppress(OSError):
                os.kill(pid, signal_number)


def marked(mark: str) -> dict[int, int]:
    """The processes whose environment carries `mark` (see `mark_descendants`), as `process_tree`
    gives them; the caller is left out."""
    tagged = f"{MARK}={mark}".encode()
    found: dict[int, int] = {}
    for pid, _, start, proc in _processes():
        try:
            environment = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if tagged in environment and pid != os.getpid():
            found[pid] = start
    return found


def still_running(pid: int, start: int) -> bool:
    """Whether the process noted as (pid, start time) runs still (a zombie has ended)."""
    stat = _stat(Path("/proc", str(pid)))
    return stat is not None and stat[1] == start and stat[2] != "Z"


def _processes() -> Iterator[tuple[int, int, int, Path]]:
    """Each process now: pid, parent pid, start time and its /proc folder."""
    for proc in Path("/proc").glob("[0-9]*"):
        stat = _stat(proc)
        if stat:
            yield int(proc.name), stat[0], stat[1], proc


def _stat(proc: Path) -> tuple[int, int, str] | None:
    """A process's parent pid, start time and state, from /proc/PID/stat; None once gone."""
    try:  # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = (proc / "stat").read_text().rpartition(")")[2].split()
        return int(fields[1]), int(fields[19]), fields[0]
    except (OSError, ValueError, IndexError):
        return None


def reap(tree: dict[int, int], mark: str) -> None:
    """Kill `tree`, every process carrying `mark`, and what any of them started since the tree
    was noted (a trial's wandb-core, which drops the mark): each is stopped first, so that it
    can neither leave its children to init nor start more, then all are killed."""
    stopped: dict[int, int] = {}
    found = {pid: start for pid, start in tree.items() if pid != os.getpid()}  # (the watcher)
    for _ in range(10):
        found |= marked(mark) if mark else {}
        new = {p: s for p, s in found.items() if p not in stopped and still_running(p, s)}
        if not new:
            break
        _signal(new, signal.SIGSTOP)
        stopped |= new
        found = descendants(set(stopped))
    _signal(stopped, signal.SIGKILL)


def main(argv: list[str]) -> int:
    watched, mark = int(argv[0]), argv[1] if len(argv) > 1 else ""
    tree: dict[int, int] = {}
    while True:
        readable, _, _ = select.select([sys.stdin.buffer], [], [], NOTE_EVERY_SECONDS)
        if readable:
            data = os.read(sys.stdin.fileno(), 64)
            if GOODBYE in data:
                return 0
            if not data:  # the controller is gone without a word
                reap(tree, mark)
                return 0
        tree = process_tree(watched)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
