"""How values, params, durations and states are written wherever a person reads them: the
live table, `status`, the results table and the report."""

from __future__ import annotations

from typing import Any

STATE_STYLES = {
    "queued": "dim",
    "running": "cyan",
    "complete": "green",
    "pruned": "yellow",
    "fail": "red",
    "interrupted": "magenta",
    "retrying": "yellow",
}


def format_params(params: dict[str, Any], width: int = 48) -> str:
    """`lr=0.001 num_heads=4`: each key's last part, cut to `width` characters."""
    text = " ".join(f"{key.rsplit('.', 1)[-1]}={format_value(v)}" for key, v in params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_value(value: Any) -> str:
    """Four significant digits for floats, `-` for None."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def format_seconds(seconds: float) -> str:
    """`m:ss`, or `XhMM` past an hour."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}"
