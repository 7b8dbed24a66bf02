"""Sweep spec: a YAML file -> a validated, normalised `SweepSpec`.

The format is a superset of the W&B sweep configuration, so an existing W&B sweep YAML loads
unchanged. Our extensions: `method: ablation` with `baseline:`/`ablations:`, `seeds:`,
`optuna:`, `base:`, `trainer:`, `resources:`, `max_concurrent:`, `max_retries:`,
`trial_timeout:`, `report_timeout:`, `wandb:`, `storage:`, `study_name:` and `checkpoints:`.

`load_spec` reports every problem at once, one line each, `FILE:LINE: key.path: message`, as a
`SpecError` (the CLI prints the lines and exits 2). Parameters are flattened to dotted keys:
`optimizer: {parameters: {lr: ...}}` and `optimizer.lr: ...` are the same parameter. When the
spec targets the shared trainer, every key and value is checked against the trainer's config
before anything runs (see `spec_checks.py`).

W&B semantics kept: `log_uniform` bounds are natural-log exponents, the `*_values` variants take
values; `min`/`max` without a distribution is `int_uniform` when both are integers, else
`uniform`; `probabilities` weight `values` in random search. Differences from W&B:
- `q` defaults to 1 (an integer), so `q_*` distributions without `q` give integers.
- quantised samples stay within [min, max]: W&B may round to a multiple of `q` just outside.
- `log_uniform` with both bounds in (0, 1] is refused: those are exponents (values 1 to e),
  almost always meant as `log_uniform_values`.
- random and bayes need `run_cap` (W&B would run forever); `sigma`, `a`, `b` must be > 0.
- hyperband `eta` must be an integer (Optuna's reduction factor).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orchestrator.errors import UserError
from orchestrator.programs.base import Program
from orchestrator.spec.checkpoints import Checkpoints
from orchestrator.spec.parameter import (
    GRID_DISTRIBUTIONS,
    Number,
    Parameter,
    StrictModel,
    did_you_mean,
    raise_problems,
    show,
)
from orchestrator.spec.search_options import (
    MULTI_OBJECTIVE_PRUNING,
    EarlyTerminate,
    Metric,
    OptunaOptions,
    chosen_metric,
    metrics_problem,
    optuna_problems,
)
from orchestrator.spec.seeds import adaptive_seed_range, grid_baseline, seed_range_or_none
from orchestrator.tracking.info import server_unreachable
from orchestrator.tracking.redact import ENVVAR_MACRO

COMMAND_MACROS = (
    "${env}",
    "${interpreter}",
    "${program}",
    "${args}",
    "${args_no_equals}",
    "${args_no_hyphens}",
    "${args_no_boolean_flags}",
    "${args_json}",
    "${args_json_file}",
    "${args_append_hydra}",
    "${args_override_hydra}",
)
MAX_GRID = 100_000  # points; a bigger grid is almost certainly a mistake
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ABLATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class SpecError(UserError):
    """A bad sweep spec: one `FILE:LINE: key.path: message` line per problem."""


def _gpus(value: Any) -> int | float | str:
    """A number of GPUs, or "auto" (`run.packing`)."""
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"must be a number or auto (got {show(value)})")
    return value


class Resources(StrictModel):
    """Per trial, as Ray counts them; a fraction of a GPU lets trials share one. `gpus: auto`
    packs trials onto GPUs by the memory the first one used (`run.packing`), at most
    `max_per_gpu` to a device."""

    cpus: Number = 1
    gpus: Annotated[int | float | str, PlainValidator(_gpus)] = 0
    max_per_gpu: Annotated[int, Field(ge=1)] | None = None  # with gpus: auto (default 8)

    @property
    def auto_gpus(self) -> bool:
        return self.gpus == "auto"

    @property
    def gpus_needed(self) -> float:
        """The GPUs a trial needs to start: under auto, a whole one until it is measured."""
        return 1.0 if self.auto_gpus else float(self.gpus)

    @model_validator(mode="after")
    def _check(self) -> Resources:
        numbers = [(k, v) for k, v in self if isinstance(v, int | float) and k != "max_per_gpu"]
        problems = [((k,), f"must be >= 0 (got {v})") for k, v in numbers if v < 0]
        if not self.auto_gpus and self.gpus > 1 and self.gpus != int(self.gpus):
            problems.append((("gpus",), f"above 1 must be a whole number (got {self.gpus})"))
        if self.max_per_gpu is not None and not self.auto_gpus:
            problems.append((("max_per_gpu",), "is for gpus: auto (a fixed gpus packs itself)"))
        raise_problems(problems)
        return self


class WandbOptions(StrictModel):
    project: str | None = None
    entity: str | None = None
    tags: list[str] = []
    group: str | None = None
    mode: Literal["offline", "online", "disabled"] = "offline"


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


class SweepSpec(StrictModel):
    """A validated sweep. Fields are in dependency order: validators read earlier fields."""

    model_config = ConfigDict(arbitrary_types_allowed=True)  # for trial_program

    name: str
    description: str | None = None
    method: Literal["grid", "random", "bayes", "ablation"]
    metrics: list[Metric] | None = None  # several: a multi-objective study (its Pareto front)
    metric: Metric | None = Field(None, validate_default=True)  # metrics[0] when metrics given
    run_cap: Annotated[int, Field(gt=0)] | None = Field(None, validate_default=True)
    seeds: list[int] = Field([0], validate_default=True)  # `{min, max}`: the first min
    seed_range: tuple[int, int] | None = None  # (min, max) of adaptive seeds, set from seeds:
    parameters: dict[str, Parameter] = Field({}, validate_default=True)
    early_terminate: EarlyTerminate | None = None
    program: str | None = None
    command: list[str] | None = None
    baseline: dict[str, Any] = Field({}, validate_default=True)
    ablations: dict[str, dict[str, Any]] = Field({}, validate_default=True)
    optuna: OptunaOptions = Field(OptunaOptions(), validate_default=True)
    base: str = "tiny"
    trainer: dict[str, Any] = {}
    resources: Resources = Resources()
    max_concurrent: Annotated[int, Field(gt=0)] | None = None
    max_retries: Annotated[int, Field(ge=0)] = 2
    trial_timeout: Annotated[float, Field(gt=0)] | None = None  # seconds a start may run
    report_timeout: Annotated[float, Field(gt=0)] | None = None  # seconds without a report
    wandb: WandbOptions = WandbOptions()
    storage: str | None = None
    study_name: str | None = None
    checkpoints: Checkpoints | None = None
    # W&B keys accepted so that a W&B sweep loads unchanged; project/entity fill `wandb`.
    project: str | None = None
    entity: str | None = None
    controller: dict[str, Any] | None = None
    apiVersion: str | None = None  # noqa: N815 (W&B's spelling)
    kind: Literal["sweep"] | None = None
    # Set by load_spec, not by the user.
    path: Path
    spec_hash: str
    param_paths: dict[str, tuple[str, ...]] = {}  # each parameter's key path as written
    # What every trial runs, resolved from `program`/`command` (never dumped).
    trial_program: Program = Field(exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _seed_range(cls, data: Any) -> Any:
        """`seeds: {min, max}` also sets `seed_range` (the seeds validator says what is wrong)."""
        if isinstance(data, dict) and isinstance(data.get("seeds"), dict):
            data = {**data, "seed_range": seed_range_or_none(data["seeds"], data.get("method"))}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not SAFE_NAME.match(name):
            raise ValueError(f"'{name}' must be letters, digits, '_', '.', '-' (it names a folder)")
        return name

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, metrics: list[Metric] | None) -> list[Metric] | None:
        problem = metrics_problem(metrics) if metrics is not None else None
        if problem:
            raise ValueError(problem)
        return metrics

    @field_validator("metric")
    @classmethod
    def _metric(cls, metric: Metric | None, info: ValidationInfo) -> Metric | None:
        metric = chosen_metric(metric, info.data.get("metrics"))
        bad_metrics = "metrics" not in info.data  # said already: not "needs a metric" too
        if metric is None and info.data.get("method") == "bayes" and not bad_metrics:
            raise ValueError("method bayes needs a metric, e.g. {name: val_loss, goal: minimize}")
        return metric

    @field_validator("run_cap")
    @classmethod
    def _run_cap(cls, run_cap: int | None, info: ValidationInfo) -> int | None:
        method = info.data.get("method")
        if run_cap is None and method in ("random", "bayes"):
            raise ValueError(f"method {method} needs run_cap (how many trials to run)")
        return run_cap

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, seeds: Any, info: ValidationInfo) -> Any:
        if isinstance(seeds, dict):
            seeds = list(range(adaptive_seed_range(seeds, info.data.get("method"))[0]))
        elif isinstance(seeds, int) and not isinstance(seeds, bool):
            if seeds < 1:
                raise ValueError(f"a count of seeds must be at least 1 (got {seeds})")
            seeds = list(range(seeds))
        elif not isinstance(seeds, list):
            raise ValueError(f"must be a count or a list of integers (got {show(seeds)})")
        if not seeds:
            raise ValueError("must not be empty")
        if len(set(map(repr, seeds))) != len(seeds):
            raise ValueError("lists a seed twice")
        if len(seeds) > 1 and info.data.get("method") == "bayes":
            raise ValueError("bayes runs one seed per trial; give one seed")
        return seeds

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, parameters: dict[str, Parameter], info: ValidationInfo) -> Any:
        method = info.data.get("method")
        if method == "ablation" and parameters:
            raise ValueError(
                "method ablation runs baseline: and ablations:, not parameters: "
                "(fixed values go in trainer: or baseline:)"
            )
        if method in ("random", "bayes") and not parameters:
            raise ValueError(f"method {method} needs at least one parameter")
        if method == "grid":
            raise_problems(_grid_problems(parameters))
        if method == "bayes":
            raise_problems(
                [
                    (
                        (name, "values"),
                        "bayes (Optuna) needs plain values: numbers, strings, booleans or null",
                    )
                    for name, p in parameters.items()
                    if p.distribution == "categorical" and not all(map(_is_scalar, p.values))
                ]
            )
        return parameters

    @field_validator("early_terminate")
    @classmethod
    def _early_terminate(cls, et: EarlyTerminate | None, info: ValidationInfo) -> Any:
        if et is not None and info.data.get("metric", 0) is None:
            raise ValueError("early termination needs a metric to compare trials by")
        if et is not None and info.data.get("metrics"):
            raise ValueError(MULTI_OBJECTIVE_PRUNING.format(what="early_terminate"))
        return et

    @field_validator("command")
    @classmethod
    def _command(cls, command: list[str] | None) -> list[str] | None:
        for arg in command or []:
            envvar = ENVVAR_MACRO.fullmatch(arg)
            if arg.startswith("${") and arg not in COMMAND_MACROS and not envvar:
                raise ValueError(f"unknown macro {arg}{did_you_mean(arg, COMMAND_MACROS)}")
        return command

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, baseline: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        method = info.data.get("method")
        if baseline and method == "grid":
            return grid_baseline(baseline, info.data.get("parameters", {}), info.data.get("seeds"))
        if baseline and method not in (None, "ablation"):
            raise ValueError("only applies to method: ablation or grid")
        return baseline

    @field_validator("ablations")
    @classmethod
    def _ablations(cls, ablations: dict[str, dict[str, Any]], info: ValidationInfo) -> Any:
        method = info.data.get("method")
        if ablations and method not in (None, "ablation"):
            raise ValueError("only applies to method: ablation")
        if method == "ablation" and not ablations:
            raise ValueError("method ablation needs at least one ablation")
        baseline = info.data.get("baseline", {})
        problems = []
        for name, overrides in ablations.items():
            if name == "baseline" or not ABLATION_NAME.match(name):
                problems.append(((name,), "name must be letters, digits, '_', '-', not baseline"))
            elif all(k in baseline and baseline[k] == v for k, v in overrides.items()):
                problems.append(((name,), "changes nothing (same as baseline)"))
        raise_problems(problems)
        return ablations

    @field_validator("optuna")
    @classmethod
    def _optuna(cls, options: OptunaOptions, info: ValidationInfo) -> OptunaOptions:
        has_et = info.data.get("early_terminate") is not None
        pruner = options.pruner or ("hyperband" if has_et else "none")
        if pruner != "none" and info.data.get("metric", 0) is None:
            raise ValueError(f"pruner {pruner} needs a metric")
        options = options.model_copy(update={"pruner": pruner})
        raise_problems(optuna_problems(options, len(info.data.get("metrics") or [None])))
        return options

    @model_validator(mode="after")
    def _wandb_from_top_level(self) -> SweepSpec:
        filled = {
            "project": self.wandb.project or self.project,
            "entity": self.wandb.entity or self.entity,
        }
        self.wandb = self.wandb.model_copy(update=filled)
        return self

    @property
    def objectives(self) -> list[Metric]:
        """What the study optimises, in order: `metrics`, else the one `metric` (none without)."""
        return list(self.metrics or ([self.metric] if self.metric else []))

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def with_reachable_wandb(self, run_dir: Path) -> tuple[SweepSpec, str | None]:
        """This spec, logging offline when it asks for online and the W&B server cannot be
        reached from here (checked once per process: else every run's `wandb.init` waits
        about 90 s before it gives up); with the one line that says so, else None."""
        reason = server_unreachable() if self.wandb.mode == "online" else None
        if reason is None:
            return self, None
        offline = self.wandb.model_copy(update={"mode": "offline"})
        note = (
            f"wandb: {reason}; this sweep logs offline under {run_dir}/wandb; once the server "
            f"can be reached: wandb sync {run_dir}/wandb/offline-run-*"
        )
        return self.model_copy(update={"wandb": offline}), note


def _grid_problems(parameters: dict[str, Parameter]) -> list[tuple[tuple[Any, ...], str]]:
    """Parameters a grid cannot enumerate, and grids too big to plan."""
    problems = []
    for name, p in parameters.items():
        if p.distribution not in GRID_DISTRIBUTIONS:
            problems.append(
                (
                    (name,),
                    f"a grid needs discrete values, but {p.distribution} is continuous "
                    "(use values:, int_uniform or q_uniform)",
                )
            )
        elif p.probabilities is not None:
            problems.append(((name, "probabilities"), "has no meaning in a grid"))
    size = math.prod(p.grid_size() for p in parameters.values())
    if not problems and size > MAX_GRID:
        problems.append(
            (
                (),
                f"the grid has {size:,} points, more than {MAX_GRID:,} "
                "(use method: random with run_cap)",
            )
        )
    return problems


# Internal fields that load_spec sets; a spec file that names them has an unknown key.
INTERNAL_FIELDS = ("path", "spec_hash", "param_paths", "trial_program")
USER_FIELDS = tuple(k for k in SweepSpec.model_fields if k not in INTERNAL_FIELDS)
PARAMETER_FIELDS = tuple(Parameter.model_fields)


def spec_hash(text: str, overrides: Sequence[str]) -> str:
    return hashlib.sha256("\n".join([text, *overrides]).encode()).hexdigest()
