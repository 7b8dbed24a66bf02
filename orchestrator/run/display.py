"""What a person watching a sweep sees: a live rich table on a terminal, plain lines otherwise;
secrets redacted (a parameter named like one, and its value in a failure reason)."""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from orchestrator.format import (
    STATE_STYLES,
    format_params,
    format_seconds,
    format_value,
    output_console,
)
from orchestrator.tracking.redact import redact_text, sanitize, secret_values

MAX_ROWS = 24
DONE_STATES = ("complete", "pruned", "fail")  # an interrupted trial is not done: it resumes


def counts_as_done(view: TrialView, event: str) -> bool:
    """Whether this event finishes the trial for the progress count."""
    return event == "finished" and view.state in DONE_STATES


@dataclass
class TrialView:
    """The controller's picture of one trial, for display only (the store holds the truth)."""

    number: int
    params: dict[str, Any]
    state: str = "running"
    step: int | None = None
    latest: float | None = None
    best: float | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    node: str = ""
    reason: str | None = None
    gpu: dict[str, Any] = field(default_factory=dict)  # device, share, memory_mb, util

    def elapsed(self) -> float:
        if self.state == "queued":
            return 0.0
        return (self.ended or time.time()) - self.started

    @functools.cached_property
    def _secrets(self) -> list[str]:  # its params never change: found once, not per render
        return secret_values(self.params)

    @functools.cached_property
    def _params_shown(self) -> str:
        return format_params(sanitize(self.params, self._secrets))

    def shown(self) -> tuple[str, str | None]:
        """Its params and failure reason as a person may see them: secrets redacted."""
        reason = redact_text(self.reason, self._secrets) if self.reason else None
        return self._params_shown, reason


def gpu_column(gpu: dict[str, Any]) -> str:
    """`0 x0.25 3.1G 45%`: the device, its share, the peak memory and utilisation reported."""
    if not gpu:
        return ""
    share = gpu.get("share") or 1
    parts = [str(gpu.get("device", "?")), f"x{share:.2g}"]
    if gpu.get("memory_mb") is not None:
        parts.append(f"{gpu['memory_mb'] / 1024:.1f}G")
    if gpu.get("util") is not None:
        parts.append(f"{gpu['util']:.0f}%")
    return " ".join(parts)


class Display(Protocol):
    def start(self, title: str, total: int | None, done: int, metric: str = "metric") -> None: ...
    def update(self, view: TrialView, event: str) -> None: ...
    def set_total(self, total: int) -> None: ...  # the sweep grew (adaptive seeds)
    def stop(self) -> None: ...


def make_display(console: Console | None = None) -> Display:
    """A live table when stdout is a terminal, plain log lines otherwise."""
    console = console or output_console()
    return LiveDisplay(console) if console.is_terminal else PlainDisplay()


class PlainDisplay:
    """One line per trial event, for logs and pipes."""

    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stdout
        self.total: int | None = None
        self.done = 0

    def start(self, title: str, total: int | None, done: int, metric: str = "metric") -> None:
        self.total, self.done = total, done
        print(
            f"{title}: {done}/{total if total is not None else '?'} trials done", file=self.stream
        )

    def update(self, view: TrialView, event: str) -> None:
        if event in ("metrics", "queued"):
            return
        if counts_as_done(view, event):
            self.done += 1
        params, reason = view.shown()
        line = f"[{self.done}/{self.total or '?'}] trial {view.number} {view.state} {params}"
        if view.node:
            line += f" node={view.node}"
        if view.gpu:
            line += f" gpu={gpu_column(view.gpu).replace(' ', ',')}"
        if event == "finished":
            line += f" best={format_value(view.best)} step={format_value(view.step)}"
            line += f" elapsed={format_seconds(view.elapsed())}"
        if reason:
            line += f" reason={reason}"
        print(line, file=self.stream, flush=True)

    def set_total(self, total: int) -> None:
        self.total = total

    def stop(self) -> None:
        pass


class LiveDisplay:
    """A rich live table of trials with an overall progress bar and ETA."""

    def __init__(self, console: Console):
        self.console = console
        self.views: dict[int, TrialView] = {}
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = None
        self.live: Live | None = None
        self.metric = "metric"

    def start(self, title: str, total: int | None, done: int, metric: str = "metric") -> None:
        self.metric = metric
        self.task = self.progress.add_task(title, total=total, completed=done)
        self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=4)
        self.live.start()

    def update(self, view: TrialView, event: str) -> None:
        self.views[view.number] = view
        if counts_as_done(view, event) and self.task is not None:
            self.progress.advance(self.task)

    def set_total(self, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, total=total)

    def render(self) -> Group:
        table = Table(expand=False, header_style="bold")
        columns = ("trial", "params", "state", "step", self.metric, "best", "elapsed", "node")
        with_gpu = any(v.gpu for v in self.views.values())  # a CPU sweep's table is unchanged
        columns += ("gpu",) * with_gpu
        for column in columns:
            table.add_column(
                column, justify="right" if column != "params" else "left", overflow="fold"
            )
        running = [v for v in self.views.values() if v.ended is None]
        finished = sorted(
            (v for v in self.views.values() if v.ended is not None), key=lambda v: -v.ended
        )
        for view in (running + finished)[:MAX_ROWS]:
            style = STATE_STYLES.get(view.state, "")
            params, reason = view.shown()
            state = f"{view.state} ({reason[:24]})" if reason else view.state
            table.add_row(
                str(view.number),
                params,
                f"[{style}]{state}[/]" if style else state,
                format_value(view.step),
                format_value(view.latest),
                format_value(view.best),
                format_seconds(view.elapsed()),
                view.node,
                *[gpu_column(view.gpu)] * with_gpu,
            )
        return Group(table, self.progress)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
