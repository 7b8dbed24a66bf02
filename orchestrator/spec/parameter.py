"""One swept parameter in any W&B form: its distribution, checks, range and kind of values.

Also the small validation helpers the spec models share (`StrictModel`, `Problems`, `Number`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, model_validator

# Each W&B distribution and the keys it takes.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "categorical": ("values", "probabilities"),
    "int_uniform": ("min", "max"),
    "uniform": ("min", "max"),
    "q_uniform": ("min", "max", "q"),
    "log_uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
    "q_log_uniform": ("min", "max", "q"),
    "q_log_uniform_values": ("min", "max", "q"),
    "inv_log_uniform": ("min", "max"),
    "inv_log_uniform_values": ("min", "max"),
    "normal": ("mu", "sigma"),
    "q_normal": ("mu", "sigma", "q"),
    "log_normal": ("mu", "sigma"),
    "q_log_normal": ("mu", "sigma", "q"),
    "beta": ("a", "b"),
    "q_beta": ("a", "b", "q"),
}
DEFAULTS = {"mu": 0.0, "sigma": 1.0, "q": 1, "a": 1.0, "b": 1.0}
GRID_DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "q_uniform")


class Problems(ValueError):
    """Several problems found by one validator, each at a key path below the validated key."""

    def __init__(self, items: list[tuple[tuple[Any, ...], str]]):
        self.items = items
        super().__init__("; ".join(message for _, message in items))


def raise_problems(items: list[tuple[tuple[Any, ...], str]]) -> None:
    if items:
        raise Problems(items)


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """ "; did you mean 'x'?" for the closest choice, or "" when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def show(value: Any) -> str:
    """A value as the user wrote it in YAML: strings quoted, numbers plain."""
    return repr(value) if isinstance(value, str) else str(value).replace("True", "true")


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number (got {show(value)})")
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number (got {value})")
    return value


Number = Annotated[int | float, PlainValidator(_number)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Parameter(StrictModel):
    """One swept parameter in any W&B form; `distribution` is always set after validation."""

    distribution: str | None = None
    value: Any = None
    values: list[Any] | None = None
    probabilities: list[Number] | None = None
    min: Number | None = None
    max: Number | None = None
    mu: Number | None = None
    sigma: Number | None = None
    q: Number | None = None
    a: Number | None = None
    b: Number | None = None

    @model_validator(mode="after")
    def _check(self) -> Parameter:
        given = self.model_fields_set - {"distribution"}
        dist = self.distribution
        if dist is None:
            dist = _infer_distribution(self, given)
        elif dist == "categorical_w_probabilities":  # W&B's schema name for weighted values
            dist = "categorical"
        elif dist not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution '{dist}'{did_you_mean(dist, DISTRIBUTIONS)}")
        takes = DISTRIBUTIONS[dist]
        problems = [
            f"{key} has no meaning for {dist} (it takes {', '.join(takes)})"
            for key in sorted(given - set(takes))
        ]
        needed = [key for key in ("value", "values", "min", "max") if key in takes]
        problems += [f"{dist} needs {key}" for key in needed if key not in given]
        if not problems:
            self.distribution = dist
            for key, default in DEFAULTS.items():
                if key in takes and key not in given:
                    setattr(self, key, default)
            problems = _bound_problems(self)
        raise_problems([((), problem) for problem in problems])
        return self

    @property
    def is_constant(self) -> bool:
        return self.distribution == "constant"

    def value_range(self) -> tuple[float, float] | None:
        """The smallest and largest value this parameter can take; None when unbounded."""
        d, lo, hi = self.distribution, self.min, self.max
        if d in ("int_uniform", "uniform", "log_uniform_values", "inv_log_uniform_values"):
            return lo, hi
        if d == "log_uniform":
            return math.exp(lo), math.exp(hi)
        if d == "inv_log_uniform":
            return math.exp(-hi), math.exp(-lo)
        if d == "q_uniform":
            return quantised_range(lo, hi, self.q)
        if d == "q_log_uniform":
            return quantised_range(math.exp(lo), math.exp(hi), self.q)
        if d == "q_log_uniform_values":
            return quantised_range(lo, hi, self.q)
        if d in ("beta", "q_beta"):
            return 0.0, 1.0
        return None

    def describe(self) -> str:
        """One line for people, e.g. "log_uniform_values 0.0003 .. 0.03"."""
        d = self.distribution
        if d == "constant":
            return f"constant {show(self.value)}"
        if d == "categorical":
            listed = "values " + ", ".join(show(v) for v in self.values)
            if self.probabilities is None:
                return listed
            return f"{listed} (p = {', '.join(f'{w:g}' for w in self.probabilities)})"
        shape = {k: getattr(self, k) for k in DISTRIBUTIONS[d]}
        if "min" in shape:
            q = f" step {self.q:g}" if "q" in shape else ""
            return f"{d} {self.min:g} .. {self.max:g}{q}"
        return f"{d} " + ", ".join(f"{k}={v:g}" for k, v in shape.items())

    def grid_size(self) -> int:
        """How many values a grid takes for this (discrete) parameter."""
        if self.distribution == "categorical":
            return len(self.values)
        if self.distribution in ("int_uniform", "q_uniform"):
            lo, hi = self.value_range()
            return round((hi - lo) / (self.q or 1)) + 1
        return 1

    def grid_values(self) -> list[Any]:
        """The values a grid takes for this (discrete) parameter."""
        if self.distribution == "constant":
            return [self.value]
        if self.distribution == "categorical":
            return list(self.values)
        if self.distribution == "int_uniform":
            return list(range(self.min, self.max + 1))
        if self.distribution == "q_uniform":
            lo, hi = self.value_range()
            count = round((hi - lo) / self.q) + 1
            return [tidy_multiple(lo + i * self.q, self.q) for i in range(count)]
        raise ValueError(f"{self.distribution} has no grid")  # spec validation prevents this

    def gives_integers(self) -> bool:
        """Whether every value drawn is an int (int_uniform, or a q_ distribution with int q)."""
        if self.distribution in ("constant", "categorical"):
            values = self.values if self.distribution == "categorical" else [self.value]
            return all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        return self.distribution == "int_uniform" or isinstance(self.q, int)


def tidy_multiple(x: float, q: float) -> int | float:
    """A multiple of q without float noise (0.30000000000000004 -> 0.3); int for int q."""
    return int(round(x)) if isinstance(q, int) else round(x, 12)


def quantised_range(lo: float, hi: float, q: float) -> tuple[float, float]:
    """The smallest and largest multiple of q within [lo, hi] (ints when q is an int)."""
    first, last = math.ceil(lo / q - 1e-9) * q, math.floor(hi / q + 1e-9) * q
    if isinstance(q, int):
        return int(first), int(last)
    return round(first, 12), round(last, 12)


def _infer_distribution(p: Parameter, given: set[str]) -> str:
    """W&B's inference when `distribution` is absent."""
    if {"value", "values"} <= given:
        raise ValueError("give value or values, not both")
    if "value" in given:
        return "constant"
    if "values" in given:
        return "categorical"
    if {"min", "max"} <= given:
        ints = all(isinstance(v, int) for v in (p.min, p.max))
        return "int_uniform" if ints else "uniform"
    if given & {"min", "max"}:
        missing = "max" if "min" in given else "min"
        raise ValueError(f"needs {missing} as well")
    if given:
        raise ValueError(f"{', '.join(sorted(given))} needs a distribution (e.g. normal, beta)")
    raise ValueError("needs value, values, min and max, or a distribution")


def _bound_problems(p: Parameter) -> list[str]:
    """Bounds, weights and shape parameters that make no sense; [] when all is well."""
    d = p.distribution
    if d == "categorical":
        return _values_problems(p.values, p.probabilities)
    problems = []
    if d == "int_uniform":
        problems += [
            f"{k} must be an integer for int_uniform (got {show(v)})"
            for k, v in (("min", p.min), ("max", p.max))
            if not isinstance(v, int)
        ]
    if p.min is not None and p.min >= p.max:
        problems.append(f"min ({p.min}) must be less than max ({p.max})")
    elif d.endswith("_values") and p.min <= 0:
        problems.append(f"min ({p.min}) must be > 0 for {d} (bounds are values, not exponents)")
    elif d == "log_uniform" and p.min > 0 and p.max <= 1:
        problems.append(
            f"log_uniform bounds are natural-log exponents (values from exp({p.min}) to "
            f"exp({p.max})); for values between {p.min} and {p.max} use log_uniform_values"
        )
    for key in ("sigma", "a", "b", "q"):
        value = getattr(p, key)
        if value is not None and value <= 0:
            problems.append(f"{key} must be > 0 (got {value})")
    if not problems and d.startswith("q_") and p.min is not None:
        lo, hi = p.value_range()
        if lo > hi:
            problems.append(f"no multiple of q ({p.q}) lies between min and max")
    return problems


def _values_problems(values: list[Any], probabilities: list[float] | None) -> list[str]:
    if not values:
        return ["values must not be empty"]
    seen, problems = set(), []
    for value in values:
        key = repr(value)
        if key in seen:
            problems.append(f"values lists {show(value)} twice")
        seen.add(key)
    if probabilities is not None:
        if len(probabilities) != len(values):
            problems.append(f"{len(probabilities)} probabilities for {len(values)} values")
        elif any(w < 0 for w in probabilities):
            problems.append("probabilities must not be negative")
        elif not math.isclose(sum(probabilities), 1.0, abs_tol=1e-6):
            problems.append(f"probabilities sum to {sum(probabilities):g}, not 1")
    return problems
