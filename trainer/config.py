"""The trainer's configuration: typed dataclasses, YAML presets and dotted-key overrides.

A config is four sections (model, optimizer, data, train). Every value has a dotted key such
as `optimizer.lr`; overrides arrive in the forms a W&B agent passes them (`--optimizer.lr=3e-4`,
`optimizer.lr=3e-4`, `--optimizer.lr 3e-4`, or a JSON file of such keys) and are checked
against the field's type, so a typo or a bad value is a `ConfigError` naming the key and the
closest valid key rather than a crash deep inside training.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).parent / "presets"
PRESETS: tuple[str, ...] = ("tiny", "small", "tinystories-17m")
# What `train()` reports (every log and eval step) and returns, by name: the metrics a sweep
# of the trainer can optimise. A test holds it to what a real run gives.
REPORTED_METRICS: tuple[str, ...] = (
    "train_loss",
    "val_loss",
    "val_perplexity",
    "val_accuracy",
    "best_val_loss",
    "lr",
    "grad_norm",
    "tokens_per_s",
    "step_time_s",
    "memory_mb",
    "tokens",
    "elapsed_s",
    "step",
    "num_params",
    "flops_per_token",
    "gpu_peak_memory_mb",
    "gpu_total_memory_mb",
    "gpu_util",
    "gpu_util_mean",
    "mfu",
)
# Of those, what a run reports only on a CUDA device (None, or absent, on the CPU;
# `gpu_util*` also needs NVML, `mfu` a device of known peak: `trainer.gpu`).
GPU_METRICS: tuple[str, ...] = (
    "gpu_peak_memory_mb",
    "gpu_total_memory_mb",
    "gpu_util",
    "gpu_util_mean",
    "mfu",
)


class ConfigError(ValueError):
    """A bad config key or value; the message names the key (and the closest valid key)."""


@dataclass
class ModelConfig:
    """The Transformer LM and its ablation switches.

    `d_ff` is the SwiGLU hidden width; 0 means 8/3 * d_model rounded to a multiple of 64 (the
    CS336 choice). The ungated `silu` and `gelu` feed-forwards use 3/2 * d_ff hidden units, so
    all three have the same parameter count (4 * d_model when d_ff = 8/3 * d_model).
    """

    vocab_size: int = 1024
    context_length: int = 64
    d_model: int = 64
    num_layers: int = 4
    num_heads: int = 4
    d_ff: int = 0
    norm: str = "rmsnorm"  # rmsnorm | layernorm | none
    norm_position: str = "pre"  # pre | post
    positions: str = "rope"  # rope | nope | learned
    ffn: str = "swiglu"  # swiglu | silu | gelu
    tie_weights: bool = False
    rope_theta: float = 10000.0
    init_std: float = 0.02


@dataclass
class OptimizerConfig:
    """AdamW with a linear warm-up then a cosine decay to `min_lr` (capped at `lr`)."""

    lr: float = 1e-2
    min_lr: float = 1e-3
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # global gradient-norm clip; 0 turns clipping off


@dataclass
class DataConfig:
    """Where tokens come from.

    `source` is "stories" (the embedded story generator) or a path to a `.txt` file (tokenised
    with a byte-level BPE trained on it) or a pre-tokenised uint16 `.bin` / `.npy` file.
    `cache_dir` "" means $ORCHESTRATE_CACHE or ~/.cache/orchestrate.
    """

    source: str = "stories"
    num_stories: int = 20000  # size of the generated corpus (stories only)
    story_style: str = "plain"  # plain | rich (trainer.stories; stories only)
    val_fraction: float = 0.05
    seed: int = 0  # seeds the story generator (the corpus, not the training run)
    cache_dir: str = ""


@dataclass
class TrainConfig:
    """The loop: steps, batches, logging, evaluation, checkpoints, device and the final sample."""

    max_steps: int = 500
    batch_size: int = 16
    grad_accum_steps: int = 1
    log_every: int = 10
    eval_every: int = 100
    eval_batches: int = 8
    checkpoint_every: int = 0  # steps; 0: only when stopped or finished
    # Also checkpoint once this many seconds have passed since the last one (0: never), so a
    # killed worker or controller costs at most this much training on any preset.
    checkpoint_seconds: float = 60.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False
    sample_tokens: int = 48
    sample_temperature: float = 0.8
    sample_top_p: float = 0.9
    sample_prompt: str = "Once upon a time"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# The enum-like string fields and their valid values.
CHOICES: dict[str, tuple[str, ...]] = {
    "model.norm": ("rmsnorm", "layernorm", "none"),
    "model.norm_position": ("pre", "post"),
    "model.positions": ("rope", "nope", "learned"),
    "model.ffn": ("swiglu", "silu", "gelu"),
    "data.story_style": ("plain", "rich"),
    "train.device": ("auto", "cpu", "cuda"),
}

_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def config_keys() -> dict[str, type]:
    """Every valid dotted key and its type, e.g. {"optimizer.lr": float, ...}."""
    keys = {}
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory):
            keys[f"{section.name}.{f.name}"] = _TYPES[f.type]
    return keys


def closest_key(key: str, candidates: Sequence[str]) -> str:
    """The candidate most like `key`; a bare leaf such as "lr" finds "optimizer.lr"."""
    leaf = key.rsplit(".", 1)[-1]
    same_leaf = [c for c in candidates if c.rsplit(".", 1)[-1] == leaf]
    if same_leaf:
        return same_leaf[0]
    return max(candidates, key=lambda c: difflib.SequenceMatcher(None, key, c).ratio())


def _unknown_key(key: str, where: str = "") -> ConfigError:
    suggestion = closest_key(key, list(config_keys()))
    return ConfigError(f"{where}unknown config key '{key}' (did you mean '{suggestion}'?)")


def coerce_value(key: str, value: Any) -> Any:
    """`value` converted to the type of `key` (strings such as "3e-4" or "true" are parsed)."""
    kind = config_keys().get(key)
    if kind is None:
        raise _unknown_key(key)
    converted = _convert(value, kind)
    if converted is None:
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")
    choices = CHOICES.get(key)
    if choices and converted not in choices:
        hint = difflib.get_close_matches(converted, choices, n=1, cutoff=0.0)
        raise ConfigError(
            f"{key}: {converted!r} is not one of {', '.join(choices)} (did you mean {hint[0]!r}?)"
        )
    return converted


def _convert(value: Any, kind: type) -> Any:
    """`value` as `kind`, or None when it cannot be read as one."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else None
    if kind is str:
        return value if isinstance(value, str) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if kind is int:
        return int(value) if float(value).is_integer() else None
    return float(value)


def flatten_overrides(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested or dotted keys -> flat dotted keys; W&B's {"key": {"value": v}} becomes {"key": v}."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "desc"}:
            value = value["value"]
        if isinstance(value, Mapping):
            flat.update(flatten_overrides(value, prefix=f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """A copy of `config` with the dotted (or nested) `overrides` applied, typed and checked."""
    config = config_from_dict(config_to_dict(config), check=False)
    _set_values(config, flatten_overrides(overrides))
    validate(config)
    return config


def _set_values(config: Config, flat: Mapping[str, Any]) -> None:
    for key, value in flat.items():
        value = coerce_value(key, value)  # raises on an unknown key before we look it up
        section, name = key.split(".", 1)
        setattr(getattr(config, section), name, value)


def parse_override_args(args: Sequence[str]) -> dict[str, Any]:
    """Command-line overrides -> {dotted key: raw value}.

    Accepts `--optimizer.lr=3e-4`, `optimizer.lr=3e-4`, `--optimizer.lr 3e-4`, a bare flag
    `--train.compile` (true), an inline JSON object, and a path to a JSON file of keys (the
    W&B `${args_json_file}` form, flat, nested or {"key": {"value": v}}).
    """
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.strip():
            continue
        if arg.lstrip().startswith("{"):
            overrides.update(flatten_overrides(_parse_json(arg, "inline JSON argument")))
        elif arg.endswith(".json") and "=" not in arg and not arg.startswith("-"):
            overrides.update(flatten_overrides(_read_json_file(Path(arg))))
        elif "=" in arg:
            key, value = arg.split("=", 1)
            overrides[key.lstrip("-+")] = value
        elif arg.startswith("--"):
            key = arg[2:]
            if i < len(args) and not _looks_like_override(args[i]):
                overrides[key] = args[i]
                i += 1
            else:  # a bare flag, as W&B passes a true boolean
                overrides[key] = "true"
        else:
            raise ConfigError(
                f"cannot read argument {arg!r}: expected --key=value, key=value or FILE.json"
            )
    return overrides


def _looks_like_override(arg: str) -> bool:
    return arg.startswith("--") or arg.split("=", 1)[0].lstrip("+") in config_keys()


def _parse_json(text: str, where: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f"{where}: expected a JSON object of config keys")
    return parsed


def _read_json_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read override file ({e.strerror})") from None
    return _parse_json(text, str(path))


def config_to_dict(config: Config) -> dict[str, Any]:
    """The config as a nested plain dict (JSON-serialisable)."""
    return dataclasses.asdict(config)


def config_from_dict(d: Mapping[str, Any], check: bool = True) -> Config:
    """A Config from a nested (or dotted) mapping; missing keys keep their defaults."""
    config = Config()
    _set_values(config, flatten_overrides(d))
    if check:
        validate(config)
    return config


def load_config(
    preset: str | Path = "tiny",
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
) -> Config:
    """The preset (a name in PRESETS or a YAML path) with `overrides` applied on top."""
    path = _preset_path(preset)
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(loaded, Mapping):
        raise ConfigError(f"{path}: expected a mapping of config sections")
    try:
        config = config_from_dict(loaded, check=False)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    if overrides is None:
        overrides = {}
    elif not isinstance(overrides, Mapping):
        overrides = parse_override_args(overrides)
    return apply_overrides(config, overrides)


def _preset_path(preset: str | Path) -> Path:
    if str(preset) in PRESETS:
        return PRESET_DIR / f"{preset}.yaml"
    path = Path(preset)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    if path.suffix in (".yaml", ".yml"):
        raise ConfigError(f"preset: file not found: {path}")
    suggestion = closest_key(str(preset), list(PRESETS))
    raise ConfigError(
        f"preset: unknown preset {str(preset)!r} (did you mean {suggestion!r}? "
        f"or give a path to a .yaml file)"
    )


def resolved_d_ff(model: ModelConfig) -> int:
    """The SwiGLU hidden width: `d_ff`, or 8/3 * d_model rounded to a multiple of 64."""
    return model.d_ff or 64 * max(1, round(8 * model.d_model / 3 / 64))


def validate(config: Config) -> None:
    """Checks that span fields or ranges; raises ConfigError naming the key."""
    m, o, d, t = config.model, config.optimizer, config.data, config.train
    positive = {
        "model.vocab_size": m.vocab_size,
        "model.context_length": m.context_length,
        "model.d_model": m.d_model,
        "model.num_layers": m.num_layers,
        "model.num_heads": m.num_heads,
        "train.max_steps": t.max_steps,
        "train.batch_size": t.batch_size,
        "train.grad_accum_steps": t.grad_accum_steps,
        "train.log_every": t.log_every,
        "train.eval_every": t.eval_every,
        "train.eval_batches": t.eval_batches,
        "data.num_stories": d.num_stories,
        "optimizer.eps": o.eps,
        "model.rope_theta": m.rope_theta,
        "train.sample_top_p": t.sample_top_p,
    }
    non_negative = {
        "model.d_ff": m.d_ff,
        "optimizer.lr": o.lr,
        "optimizer.min_lr": o.min_lr,
        "optimizer.warmup_steps": o.warmup_steps,
        "optimizer.weight_decay": o.weight_decay,
        "optimizer.grad_clip": o.grad_clip,
        "model.init_std": m.init_std,
        "train.checkpoint_every": t.checkpoint_every,
        "train.checkpoint_seconds": t.checkpoint_seconds,
        "train.sample_tokens": t.sample_tokens,
        "train.sample_temperature": t.sample_temperature,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be > 0, got {value}")
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"{key}: must be >= 0, got {value}")
    for key, value in {"optimizer.beta1": o.beta1, "optimizer.beta2": o.beta2}.items():
        if not 0 <= value < 1:
            raise ConfigError(f"{key}: must be in [0, 1), got {value}")
    if not 0 < d.val_fraction < 1:
        raise ConfigError(f"data.val_fraction: must be in (0, 1), got {d.val_fraction}")
    if t.sample_top_p > 1:
        raise ConfigError(f"train.sample_top_p: must be in (0, 1], got {t.sample_top_p}")
    if m.d_model % m.num_heads:
        raise ConfigError(
            f"model.num_heads: {m.num_heads} does not divide model.d_model={m.d_model}"
        )
    if m.positions == "rope" and (m.d_model // m.num_heads) % 2:
        raise ConfigError(
            f"model.num_heads: rope needs an even head size, "
            f"d_model/num_heads = {m.d_model // m.num_heads}"
        )
    if m.vocab_size > 65536:
        raise ConfigError(f"model.vocab_size: tokens are stored as uint16, got {m.vocab_size}")
    if m.vocab_size < 257 and not d.source.endswith((".bin", ".npy")):
        raise ConfigError(f"model.vocab_size: a byte-level BPE needs >= 257, got {m.vocab_size}")
