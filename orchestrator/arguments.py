"""What the command line accepts before anything runs: the command's place and the numbers.

A number out of range is argparse's exit 2 naming the option (`--num-cpus -1` reached
Ray's `ray.init` and ended in its traceback), and options may come before the spec or the
command (`orchestrate --num-cpus 2 SPEC`, `orchestrate --address X status`).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", int, float)

HELP = ("-h", "--help")


def command_first(argv: list[str], commands: tuple[str, ...]) -> list[str]:
    """`argv` with its command first: a spec alone means `run SPEC`, and a command named after
    options (`--address X status`) moves to the front."""
    if not argv or argv[0] in commands or argv[0] in HELP:
        return argv
    if argv[0].startswith("-"):
        at = next((i for i, word in enumerate(argv) if word in commands), None)
        if at is not None:
            return [argv[at], *argv[:at], *argv[at + 1 :]]
    return ["run", *argv]


def amount(text: str) -> float:
    """A resource amount (CPUs, GPUs): a finite number >= 0."""
    return _in_range(text, float, 0, None, "a number >= 0")


def count(text: str) -> int:
    """How many (agents, runs per agent): a whole number >= 1."""
    return _in_range(text, int, 1, None, "a whole number >= 1")


def port(text: str) -> int:
    """A TCP port to serve on."""
    return _in_range(text, int, 1, 65535, "a port from 1 to 65535")


def _in_range(text: str, parse: Callable[[str], T], low: int, high: int | None, what: str) -> T:
    try:
        value = parse(text)
    except ValueError:
        value = None
    if (
        value is None
        or not math.isfinite(value)
        or value < low
        or (high is not None and value > high)
    ):
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
    return value
