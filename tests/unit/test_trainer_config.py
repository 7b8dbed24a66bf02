"""Config: presets, every override form, type coercion, and the did-you-mean errors."""

import json

import pytest

from trainer.config import (
    PRESETS,
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_keys,
    config_to_dict,
    load_config,
    parse_override_args,
    resolved_d_ff,
)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_loads(preset):
    config = load_config(preset)
    assert isinstance(config, Config)
    assert json.loads(json.dumps(config_to_dict(config))) == config_to_dict(config)


def test_tinystories_preset_is_the_cs336_model():
    m = load_config("tinystories-17m").model
    assert (m.vocab_size, m.context_length, m.d_model, m.d_ff) == (10000, 256, 512, 1344)
    assert (m.num_layers, m.num_heads) == (4, 16)


def test_d_ff_zero_means_eight_thirds_of_d_model():
    config = load_config("tiny", {"model.d_model": 512, "model.d_ff": 0, "model.num_heads": 8})
    assert resolved_d_ff(config.model) == 1344


@pytest.mark.parametrize(
    "args",
    [
        ["--optimizer.lr=3e-4", "--model.norm=layernorm", "--train.compile=true"],
        ["optimizer.lr=3e-4", "model.norm=layernorm", "train.compile=True"],
        ["--optimizer.lr", "3e-4", "--train.compile", "--model.norm", "layernorm"],
        ["--train.compile", "model.norm=layernorm", "--optimizer.lr", "3e-4"],
        ['{"optimizer.lr": 0.0003, "model": {"norm": "layernorm"}, "train.compile": true}'],
    ],
    ids=["dashes-equals", "no-dashes", "separate-values", "bare-flag", "inline-json"],
)
def test_override_forms(args):
    config = load_config("tiny", args)
    assert config.optimizer.lr == 3e-4
    assert config.model.norm == "layernorm"
    assert config.train.compile is True


@pytest.mark.parametrize(
    "content",
    [
        {"optimizer.lr": 3e-4, "train.max_steps": 7},
        {"optimizer": {"lr": 3e-4}, "train": {"max_steps": 7}},
        {"optimizer.lr": {"value": 3e-4}, "train.max_steps": {"value": 7, "desc": None}},
    ],
    ids=["flat", "nested", "wandb-value"],
)
def test_json_file_overrides(tmp_path, content):
    path = tmp_path / "params.json"
    path.write_text(json.dumps(content))
    config = load_config("tiny", [str(path), "--train.batch_size=3"])
    assert (config.optimizer.lr, config.train.max_steps, config.train.batch_size) == (3e-4, 7, 3)


def test_values_are_coerced_to_the_field_type():
    config = apply_overrides(
        Config(),
        {"optimizer.lr": "1e-3", "train.max_steps": "100", "model.tie_weights": "yes"},
    )
    assert config.optimizer.lr == 1e-3 and isinstance(config.optimizer.lr, float)
    assert config.train.max_steps == 100 and isinstance(config.train.max_steps, int)
    assert config.model.tie_weights is True
    assert apply_overrides(Config(), {"train.max_steps": 50.0}).train.max_steps == 50


def test_overrides_leave_the_original_untouched():
    base = Config()
    apply_overrides(base, {"optimizer.lr": 0.5})
    assert base.optimizer.lr == Config().optimizer.lr


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["optimizer.lrr=1"], "unknown config key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"),
        (["--lr=1"], "unknown config key 'lr' (did you mean 'optimizer.lr'?)"),
        (["model.d_modle=8"], "did you mean 'model.d_model'?"),
        (["model.norm=rms"], "model.norm: 'rms' is not one of rmsnorm, layernorm, none"),
        (["model.positions=roped"], "(did you mean 'rope'?)"),
        (["optimizer.lr=fast"], "optimizer.lr: expected float, got 'fast'"),
        (["train.max_steps=1.5"], "train.max_steps: expected int, got '1.5'"),
        (["train.compile=maybe"], "train.compile: expected bool"),
        (["train.batch_size=0"], "train.batch_size: must be > 0"),
        (["model.num_heads=5"], "model.num_heads: 5 does not divide model.d_model"),
        (["data.val_fraction=1.5"], "data.val_fraction"),
    ],
)
def test_bad_keys_and_values_name_the_key(overrides, expected):
    with pytest.raises(ConfigError) as error:
        load_config("tiny", overrides)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_preset_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'tiny'"):
        load_config("tiyn")
    bad = tmp_path / "mine.yaml"
    bad.write_text("model:\n  d_modle: 32\n")
    with pytest.raises(ConfigError, match=r"mine.yaml: unknown config key 'model.d_modle'"):
        load_config(bad)
    good = tmp_path / "good.yaml"
    good.write_text("model:\n  d_model: 32\n  num_heads: 2\n")
    assert load_config(good).model.d_model == 32


def test_missing_json_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read override file"):
        parse_override_args([str(tmp_path / "nope.json")])


def test_round_trip_through_dict():
    config = load_config("small", ["model.ffn=gelu", "train.seed=3"])
    assert config_from_dict(config_to_dict(config)) == config


def test_config_keys_lists_every_field_with_its_type():
    keys = config_keys()
    assert keys["optimizer.lr"] is float
    assert keys["train.max_steps"] is int
    assert keys["model.tie_weights"] is bool
    assert keys["data.source"] is str
    assert len(keys) == sum(len(section) for section in config_to_dict(Config()).values())
