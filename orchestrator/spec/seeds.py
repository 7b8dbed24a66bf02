"""`seeds: {min: 2, max: 8}`: adaptive seeds, checked (the plan: `plan.rounds`); and a grid's
`baseline:`, the point its other points are compared with seed by seed."""

from __future__ import annotations

from typing import Any

from orchestrator.spec.parameter import Parameter, did_you_mean, raise_problems, show


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


def grid_baseline(
    baseline: dict[str, Any], parameters: dict[str, Parameter], seeds: list[int] | None
) -> dict[str, Any]:
    """A grid's `baseline:` (`{lr: 0.001, heads: 4}`): one of its points, every parameter
    given one of the values the grid takes, returned as the grid has them (an int written
    for a float grid value is that value). The other points are compared with it seed by
    seed, so it needs 2 or more seeds."""
    if seeds is not None and len(seeds) < 2:
        raise ValueError(
            "a grid's baseline is the point the others are compared with seed by seed: "
            "it needs seeds: 2 or more"
        )
    problems, point = [], {}
    for name in baseline:
        if name not in parameters:
            problems.append(
                ((name,), f"not a parameter of the grid{did_you_mean(name, list(parameters))}")
            )
    for name, parameter in parameters.items():
        values = parameter.grid_values()
        if name not in baseline:
            problems.append(((), f"names no value for {name} (a grid point sets every parameter)"))
            continue
        given = baseline[name]
        match = [v for v in values if v == given and isinstance(v, bool) == isinstance(given, bool)]
        if match:
            point[name] = match[0]
        else:
            taken = ", ".join(show(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
            problems.append(((name,), f"{show(given)} is not a value of the grid ({taken})"))
    raise_problems(problems)
    return point
