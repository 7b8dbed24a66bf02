"""Checks of a spec against the shared trainer's config, so a typo never costs a GPU-hour.

`TrainerProgram` runs them (other programs take any keys): every key in `parameters:`, `trainer:`,
`baseline:` and `ablations:` must be a key of `trainer.config.config_keys()`, every value must
pass `trainer.config` (types, choices, ranges), an ablation must change the resolved config,
and finally every planned trial's full config is built once (`check_trials`).
These run on the normalised data even when pydantic found other problems, so that one run of
`orchestrate plan` reports everything; malformed parts are skipped (pydantic reports them).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import ValidationError

Loc = tuple[Any, ...]
SEED_KEY = "train.seed"


def resolve_base(base: Any, spec_dir: Path) -> Any:
    """A preset name stays; a config file path is made absolute, relative to the spec."""
    from trainer.config import PRESETS

    if not isinstance(base, str) or base in PRESETS:
        return base
    path = Path(base).expanduser()
    if not path.is_absolute() and (spec_dir / path).is_file():
        return str((spec_dir / path).resolve())
    return base


def check_metric(data: dict) -> list[tuple[Loc, str]]:
    """The spec's metric, and each of `metrics:`, must be one the trainer reports (trials
    would run to the end, then fail with nothing to compare)."""
    from orchestrator.spec.parameter import did_you_mean
    from trainer.config import REPORTED_METRICS

    metrics = data.get("metrics") if isinstance(data.get("metrics"), list) else []
    named = [(("metrics", i), m) for i, m in enumerate(metrics)]
    if not named or data.get("metric") != metrics[0]:  # metrics[0] again: said once
        named.insert(0, (("metric",), data.get("metric")))
    problems = []
    for loc, metric in named:
        name = metric.get("name") if isinstance(metric, dict) else None
        if not isinstance(name, str) or name in REPORTED_METRICS:
            continue
        hint = did_you_mean(name.replace("/", "_"), REPORTED_METRICS) or did_you_mean(
            name, REPORTED_METRICS
        )
        problems.append(((*loc, "name"), f"the shared trainer never reports '{name}'{hint}"))
    return problems


def check_against_trainer(data: dict) -> list[tuple[Loc, str]]:
    """Problems with the trainer keys and values of normalised spec data."""
    checker = _Checker(data.get("base", "tiny"))
    if checker.base_problem:
        return [(("base",), checker.base_problem)]
    trainer = _mapping(data.get("trainer"))
    baseline = _mapping(data.get("baseline"))
    problems = checker.check_map(("trainer",), trainer, {})
    context = trainer if not problems else {}  # a bad value is reported once, where it is
    found = checker.check_map(("baseline",), baseline, context)
    problems += found
    baseline = baseline if not found else {}
    ablations = _mapping(data.get("ablations"))
    for name, overrides in ablations.items():
        loc = ("ablations", name)
        overrides = _mapping(overrides)
        found = checker.check_map(loc, overrides, {**context, **baseline})
        problems += found
        # An ablation that repeats the baseline's own values is reported by SweepSpec already.
        repeats = all(baseline.get(k, object()) == v for k, v in overrides.items())
        if not found and not repeats and _changes_nothing(checker, context, baseline, overrides):
            problems.append((loc, "changes nothing (same as baseline)"))
    for name, raw in _mapping(data.get("parameters")).items():
        problems += checker.check_parameter(name, raw, context)
    return problems


def check_trials(base: str, trials: list[Any], parameters: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Build every planned trial's config once; a failure names the parameter it blames.

    Each value was checked alone already; this finds combinations the trainer refuses (e.g.
    num_heads that does not divide d_model). Trials that differ only by seed are built once.
    `trials` are the plan's `PlannedTrial`s (bayes has none: its bounds were checked one by
    one)."""
    checker = _Checker(base)
    problems, seen, blamed = [], set(), set()
    for trial in trials:
        overrides = {k: v for k, v in trial.overrides.items() if k != SEED_KEY}
        key = repr(sorted(overrides.items()))
        if key in seen:
            continue
        seen.add(key)
        message = checker.quick_problem(overrides)
        blame = message.split(":", 1)[0] if message else None
        if message is None or blame in blamed:
            continue
        blamed.add(blame)
        loc = ("parameters", blame) if blame in parameters else ()
        shown = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        problems.append((loc, f"trial {trial.index} ({shown}): {message}"))
    return problems


def _suggest_key(key: str, keys: list[str]) -> str:
    """A key with the same last part ("lr" -> "optimizer.lr"), or whose last part is the other's
    initials ("optimizer.learning_rate" -> "optimizer.lr", same section first), else the
    closest spelling."""
    from orchestrator.spec.parameter import did_you_mean

    section, _, leaf = key.rpartition(".")
    same_leaf = [k for k in keys if k.rsplit(".", 1)[-1] == leaf]
    if same_leaf:
        return f"; did you mean '{same_leaf[0]}'?"
    initials = [k for k in keys if _abbreviates(k.rsplit(".", 1)[-1], leaf)]
    initials.sort(key=lambda k: k.rpartition(".")[0] != section)
    return f"; did you mean '{initials[0]}'?" if initials else did_you_mean(key, keys)


def _abbreviates(short: str, long: str) -> bool:
    """`lr` for `learning_rate`, or the other way round."""
    short, long = sorted((short, long), key=len)
    words = long.split("_")
    return len(words) > 1 and short == "".join(word[0] for word in words if word)


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _changes_nothing(checker: _Checker, context: dict, baseline: dict, ablation: dict) -> bool:
    before, _ = checker.apply({**context, **baseline})
    after, _ = checker.apply({**context, **baseline, **ablation})
    return before is not None and before == after


class _Checker:
    """Checks keys and values against one base config (preset or file)."""

    def __init__(self, base: Any):
        from trainer.config import ConfigError, config_keys, load_config

        self.keys = config_keys()
        self.base_problem = ""
        try:
            self.base = load_config(base if isinstance(base, str) else "tiny")
        except ConfigError as error:
            self.base_problem = str(error).removeprefix("preset: ")

    def apply(self, overrides: dict) -> tuple[Any, str | None]:
        """(the base config with `overrides`, None), or (None, the trainer's message)."""
        from trainer.config import ConfigError, apply_overrides

        try:
            return apply_overrides(self.base, overrides), None
        except ConfigError as error:
            return None, str(error)

    def value_problem(self, overrides: dict, key: str) -> str | None:
        """None when `overrides` apply cleanly, else the message without the `key: ` prefix."""
        value = overrides.get(key)
        if isinstance(value, dict | list):
            return f"must be a plain value for the trainer (got {value})"
        return (self.apply(overrides)[1] or "").removeprefix(f"{key}: ") or None

    def quick_problem(self, overrides: dict) -> str | None:
        """Like apply(), for known-good keys and values: sets only `overrides` on a copy."""
        from trainer.config import ConfigError, coerce_value, validate

        config = copy.deepcopy(self.base)
        try:
            for key, value in overrides.items():
                section, name = key.split(".", 1)
                setattr(getattr(config, section), name, coerce_value(key, value))
            validate(config)
        except ConfigError as error:
            return str(error)
        return None

    def key_problem(self, key: Any) -> str | None:
        if key == SEED_KEY:
            return "is set per trial from seeds:; write seeds: [N] instead"
        if key not in self.keys:
            return "not a key of the trainer config" + _suggest_key(str(key), list(self.keys))
        return None

    def check_map(self, loc: Loc, overrides: dict, context: dict) -> list[tuple[Loc, str]]:
        problems = []
        for key, value in overrides.items():
            problem = self.key_problem(key)
            if problem is None:
                problem = self.value_problem({**context, key: value}, key)
            if problem is not None:
                problems.append(((*loc, key), problem))
        return problems

    def check_parameter(self, name: str, raw: Any, context: dict) -> list[tuple[Loc, str]]:
        from orchestrator.spec.parameter import Parameter

        loc = ("parameters", name)
        problem = self.key_problem(name)
        if problem is not None:
            return [(loc, problem)]
        try:
            p = Parameter.model_validate(raw)
        except ValidationError:
            return []  # pydantic reports it
        kind = self.keys[name]
        if p.distribution == "constant":
            return self._value_problems((*loc, "value"), name, [p.value], context)
        if p.distribution == "categorical":
            return self._value_problems((*loc, "values"), name, p.values, context, indexed=True)
        if kind in (str, bool):
            return [
                (
                    loc,
                    f"takes {kind.__name__} values, but {p.distribution} gives numbers "
                    "(use values: [...])",
                )
            ]
        if kind is int and not p.gives_integers():
            return [
                (
                    loc,
                    f"is an integer, but {p.distribution} gives floats (use values:, "
                    "int_uniform, or a q_ distribution with an integer q)",
                )
            ]
        bounds = p.value_range()
        return [] if bounds is None else self._value_problems(loc, name, list(bounds), context)

    def _value_problems(self, loc, name, values, context, indexed=False) -> list:
        problems = []
        for index, value in enumerate(values):
            problem = self.value_problem({**context, name: value}, name)
            if problem is not None:
                problems.append(((*loc, index) if indexed else loc, problem))
        return problems
