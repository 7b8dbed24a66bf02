"""How values, params, durations and states are written wherever a person reads them: the
live table, `status`, the results table and the report; and the console they are printed
to, so that a table piped to a file stays whole."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console

PIPED_WIDTH = 1000  # a file has no width: wide enough that no table needs to wrap a cell

STATE_STYLES = {
    "queued": "dim",
    "running": "cyan",
    "complete": "green",
    "pruned": "yellow",
    "fail": "red",
    "interrupted": "magenta",
    "retrying": "yellow",
}


def format_params(params: dict[str, Any], width: int | None = None) -> str:
    """`lr=0.001 num_heads=4`: each key by its last part, unless two keys share it
    (`encoder.lr=0.1 decoder.lr=0.2`). Never cut, unless a `width` is given (a plot legend):
    tables wrap their cells instead."""
    leaves = [key.rsplit(".", 1)[-1] for key in params]
    names = [
        leaf if leaves.count(leaf) == 1 else key for key, leaf in zip(params, leaves, strict=True)
    ]
    text = " ".join(
        f"{name}={format_value(v)}" for name, v in zip(names, params.values(), strict=True)
    )
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def format_value(value: Any) -> str:
    """Four significant digits for floats, `-` for None."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def format_seconds(seconds: float) -> str:
    """`m:ss`, or `XhMM` past an hour."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}"


def output_console() -> Console:
    """The console the CLI prints to: the terminal's width on a terminal; piped to a file (no
    COLUMNS given), wide enough that every table keeps its natural width and no line of a
    path is broken in two."""
    console = Console()
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(width=PIPED_WIDTH)
