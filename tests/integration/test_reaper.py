"""The watcher of a controller killed with SIGKILL: what the controller started goes with it,
even a process its parent left to init before the watcher ever noted it, and one that a noted
process started just before the kill without the mark; nothing else does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import ray
from conftest import wait_for

from orchestrator.run import reaper, setup

# A controller: marks, starts its watcher, then a child that starts a grandchild in a new
# session and exits at once, so the grandchild is init's before any note of the tree; and a
# child that, once noted, starts one with an empty environment (no mark) just before the kill.
CONTROLLER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from orchestrator.run import reaper

    mark = reaper.mark_descendants()
    watcher = reaper.watch(os.getpid())
    sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
    launch = (
        "import subprocess, sys; "
        f"p = subprocess.Popen({sleeper!r}, start_new_session=True, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid, flush=True)"
    )
    out = subprocess.run([sys.executable, "-c", launch], capture_output=True, text=True).stdout
    late = (
        "import subprocess, sys, time; time.sleep(2.5); "
        f"p = subprocess.Popen({sleeper!r}, env={{}}, stdout=subprocess.DEVNULL); "
        "print(p.pid, flush=True); time.sleep(300)"
    )
    parent = subprocess.Popen([sys.executable, "-c", late], stdout=subprocess.PIPE, text=True)
    unmarked = parent.stdout.readline().strip()
    print(out.strip(), watcher.pid, mark, parent.pid, unmarked, flush=True)
    time.sleep(300)
    """
)


def test_a_killed_controllers_orphaned_grandchild_is_killed_and_a_stranger_is_not(tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    script = tmp_path / "controller.py"
    script.write_text(CONTROLLER)
    controller = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert controller.stdout is not None
        grandchild, watcher, mark, parent, unmarked = controller.stdout.readline().split()
        started = reaper.marked(mark)
        late = reaper.process_tree(int(parent))
        os.kill(controller.pid, signal.SIGKILL)  # the unmarked one has not been noted yet
        assert {int(grandchild), int(watcher), int(parent)} <= started.keys()
        assert int(grandchild) not in reaper.process_tree(controller.pid)
        assert int(unmarked) in late and int(unmarked) not in started
        assert stranger.pid not in started
        started |= late
        controller.wait(timeout=30)
        wait_for(
            lambda: not any(reaper.still_running(pid, start) for pid, start in started.items()),
            timeout=30,
        )
        assert stranger.poll() is None  # not the controller's: left alone
    finally:
        for process in (stranger, controller):
            process.kill()
            process.wait()


def test_a_local_ray_that_fails_to_start_leaves_nothing_marked():
    # The mark is set before ray.init; kept after a failed start, with no watcher to follow,
    # it went to everything this process started next (a second try's Ray included).
    assert reaper.MARK not in os.environ
    with pytest.raises(ValueError, match="nonnegative"):
        setup.start_ray(None, -1, None)  # as `Controller(num_cpus=-1)` starts it
    assert reaper.MARK not in os.environ
    assert not ray.is_initialized()
