"""The trainer's checkpoint: every bit of state the rest of a run depends on (model,
optimizer, all RNGs, the batch sampler, the loop's state), written whole or not at all, and
refused on resume by a config that would train differently."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.config import Config, ConfigError, config_to_dict, flatten_overrides

CHECKPOINT_NAME = "checkpoint.pt"

# Keys that do not change what a run computes: a checkpoint may be resumed under new values.
FREE_KEYS = {"data.cache_dir", "train.log_every", "train.eval_every", "train.eval_batches"}
FREE_KEYS |= {"train.checkpoint_every", "train.checkpoint_seconds", "train.device"}
FREE_KEYS |= {"train.compile"}


def _rng_states(batches: torch.Generator) -> dict[str, Any]:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "batches": batches.get_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def save_checkpoint(path: Path, config: Config, model, optimizer, batches, state: dict) -> None:
    """Write the checkpoint to a temporary file and rename it, so a crash never leaves half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state": state,
        "config": config_to_dict(config),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": _rng_states(batches),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: Path, config: Config, model, optimizer, batches) -> dict:
    """Restore model, optimizer and RNGs from `path`; returns the saved loop state."""
    # Our own file, holding numpy and Python RNG states: the full unpickler is needed.
    payload = torch.load(path, map_location="cpu", weights_only=False)
    _check_same_run(path, payload["config"], config)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    rng = payload["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    batches.set_state(rng["batches"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return payload["state"]


def _check_same_run(path: Path, saved: dict, config: Config) -> None:
    """Refuse a checkpoint whose config would give a different trajectory."""
    old, new = flatten_overrides(saved), flatten_overrides(config_to_dict(config))
    for key, value in new.items():
        if key not in FREE_KEYS and not key.startswith("train.sample_") and old.get(key) != value:
            raise ConfigError(
                f"{key}: {path} was written with {key}={old.get(key)!r}, this run has {value!r}"
            )
