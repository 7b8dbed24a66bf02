"""`seeds: {min: 2, max: 8}`: adaptive seeds, checked (the plan: `plan.rounds`)."""

from __future__ import annotations

from typing import Any

from orchestrator.spec.parameter import show


def adaptive_seed_range(seeds: dict[str, Any], method: str | None) -> tuple[int, int]:
    """(min, max) of `seeds: {min: 2, max: 8}`: run min seeds of every configuration, then
    add seeds to the undecided ones up to max (`plan.rounds`, `run.adaptive`)."""
    extra = sorted(set(seeds) - {"min", "max"})
    if extra:
        raise ValueError(f"takes min and max, not {', '.join(map(str, extra))}")
    low, high = seeds.get("min"), seeds.get("max")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        raise ValueError(f"min and max must be whole numbers (got {show(seeds)})")
    if low < 2 or high <= low:
        raise ValueError(f"needs 2 <= min < max (got min {low}, max {high})")
    if method not in ("ablation", "grid"):
        raise ValueError(f"adaptive seeds are for ablation and grid sweeps, not {method}")
    return low, high


def seed_range_or_none(seeds: dict[str, Any], method: str | None) -> tuple[int, int] | None:
    """The range, or None where it is wrong (the `seeds` validator says what is wrong)."""
    try:
        return adaptive_seed_range(seeds, method)
    except ValueError:
        return None
