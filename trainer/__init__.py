"""A compact CS336-style Transformer language-model trainer that sweeps can drive.

`train(config, report, checkpoint_dir)` runs one training run; `load_config` builds its
config from a preset and overrides. Importing this package does not import torch, so the
config can be validated cheaply; `trainer.train` is loaded on first use.
"""

from trainer.config import PRESETS, Config, ConfigError, config_keys, load_config

__all__ = ["PRESETS", "Config", "ConfigError", "config_keys", "load_config", "train"]


def __getattr__(name: str):
    if name == "train":
        from trainer.train import train

        return train
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
