"""The training loop, with real (very small) training runs on the embedded stories."""

import json
import math

import pytest
import torch

from trainer.config import GPU_METRICS, REPORTED_METRICS, ConfigError, load_config
from trainer.train import CHECKPOINT_NAME, lr_at, train

LOG_KEYS = {"step", "tokens", "elapsed_s", "train_loss", "lr", "grad_norm"}
LOG_KEYS |= {"step_time_s", "tokens_per_s", "memory_mb"}
EVAL_KEYS = {"val_loss", "val_perplexity", "val_accuracy"}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("trainer-cache"))


@pytest.fixture
def small(cache_dir):
    """A config that trains in about a second; `small(**overrides)` changes it."""

    def make(**overrides):
        base = {
            "model.vocab_size": 384,
            "model.context_length": 32,
            "model.d_model": 32,
            "model.num_layers": 2,
            "model.num_heads": 2,
            "optimizer.lr": 1e-2,
            "optimizer.min_lr": 1e-3,
            "optimizer.warmup_steps": 5,
            "data.num_stories": 600,
            "data.cache_dir": cache_dir,
            "train.max_steps": 30,
            "train.batch_size": 8,
            "train.log_every": 5,
            "train.eval_every": 15,
            "train.eval_batches": 2,
            "train.sample_tokens": 8,
        }
        return load_config(
            "tiny", {**base, **{k.replace("__", "."): v for k, v in overrides.items()}}
        )

    return make


def run(config, **kwargs):
    """train() with its reports collected; returns (result, reports)."""
    reports = []

    def report(metrics):
        reports.append(metrics)

    return train(config, report=report, **kwargs), reports


def test_reports_and_result(small):
    result, reports = run(small())
    assert [r["step"] for r in reports] == [5, 10, 15, 20, 25, 30]
    assert all(set(r) >= LOG_KEYS for r in reports)
    assert [r["step"] for r in reports if set(r) >= EVAL_KEYS] == [15, 30]
    assert reports[-1]["tokens"] == 30 * 8 * 32
    assert result["outcome"] == "completed" and result["resumed_from_step"] == 0
    assert result["val_loss"] == reports[-1]["val_loss"] == result["best_val_loss"]
    assert math.isclose(result["val_perplexity"], math.exp(result["val_loss"]))
    assert 0 < result["val_accuracy"] < 1 and result["num_params"] > 0
    assert result["sample"].startswith("Once upon a time")
    assert result["config"]["model"]["d_model"] == 32
    json.dumps(result)
    # What a spec may name as its metric is exactly what a run reports and returns.
    numbers = {k for r in [*reports, result] for k, v in r.items() if isinstance(v, int | float)}
    assert set(REPORTED_METRICS) - set(GPU_METRICS) == numbers - {"resumed_from_step"}


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"model__norm": "none"},
        {"model__norm": "layernorm"},
        {"model__norm_position": "post"},
        {"model__positions": "nope"},
        {"model__positions": "learned"},
        {"model__ffn": "silu"},
        {"model__ffn": "gelu"},
        {"model__tie_weights": True},
    ],
    ids=lambda v: "-".join(f"{k.split('__')[1]}={v}" for k, v in v.items()) or "baseline",
)
def test_every_ablation_variant_trains(small, variant):
    result, reports = run(small(**variant))
    assert result["outcome"] == "completed"
    assert reports[-1]["train_loss"] < reports[0]["train_loss"] - 1.0
    assert result["val_loss"] < math.log(384) - 1.0


def crash_at_step_20(metrics):
    """A report callback whose worker is lost at step 20."""
    if metrics["step"] == 20:
        raise RuntimeError("worker lost")


def test_interrupted_and_resumed_equals_uninterrupted(small, tmp_path):
    config = small(train__checkpoint_every=7)  # not a multiple of log_every: mid-interval state
    _, uninterrupted = run(config)

    with pytest.raises(RuntimeError):
        train(config, report=crash_at_step_20, checkpoint_dir=tmp_path)
    result, resumed = run(config, checkpoint_dir=tmp_path)
    assert result["resumed_from_step"] == 14
    by_step = {r["step"]: r for r in uninterrupted}
    assert [r["step"] for r in resumed] == [15, 20, 25, 30]
    for r in resumed:
        for key in ("train_loss", "grad_norm", "lr", "val_loss", "val_accuracy"):
            if key in r:
                assert r[key] == pytest.approx(by_step[r["step"]][key], rel=1e-5), (r["step"], key)
    assert result["sample"] == train(config)["sample"]


def test_a_crash_costs_at_most_checkpoint_seconds_of_training(small, tmp_path):
    """Without step checkpoints, the time-based one saves as it goes (here: every step)."""
    config = small(train__checkpoint_every=0, train__checkpoint_seconds=1e-9)

    with pytest.raises(RuntimeError):
        train(config, report=crash_at_step_20, checkpoint_dir=tmp_path)
    result, resumed = run(config, checkpoint_dir=tmp_path)
    assert result["resumed_from_step"] == 19  # saved at step 19, before step 20 was reported
    assert load_config("tiny").train.checkpoint_seconds == 60.0  # the default on every preset


def test_report_returning_true_stops_with_a_checkpoint(small, tmp_path):
    config = small()
    result = train(config, report=lambda m: m["step"] >= 10, checkpoint_dir=tmp_path)
    assert result["outcome"] == "stopped" and result["step"] == 10
    saved = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=False)
    assert saved["state"]["step"] == 10
    resumed = train(config, checkpoint_dir=tmp_path)
    assert resumed["outcome"] == "completed" and resumed["resumed_from_step"] == 10
    finished = train(config, checkpoint_dir=tmp_path)  # resuming a finished run just reports
    assert finished["resumed_from_step"] == 30
    assert finished["val_loss"] == pytest.approx(resumed["val_loss"])


def test_asked_to_stop_at_its_last_step_it_has_completed(small, tmp_path):
    # The pruner's verdict on the last evaluation comes when the work is done.
    result = train(small(), report=lambda m: m["step"] >= 30, checkpoint_dir=tmp_path)
    assert result["outcome"] == "completed" and result["step"] == 30


def test_a_checkpoint_from_another_config_is_refused(small, tmp_path):
    train(small(train__max_steps=5), checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="model.d_model"):
        train(small(train__max_steps=5, model__d_model=64), checkpoint_dir=tmp_path)


def test_a_huge_learning_rate_diverges_without_an_exception(small):
    result, reports = run(small(optimizer__lr=1e6, optimizer__grad_clip=0.0))
    assert result["outcome"] == "diverged"
    assert not math.isfinite(result["train_loss"])
    assert result["step"] == reports[-1]["step"] < 30


def test_gradient_accumulation_matches_a_bigger_batch(small):
    _, big = run(small(train__batch_size=8))
    _, accumulated = run(small(train__batch_size=4, train__grad_accum_steps=2))
    for a, b in zip(big, accumulated, strict=True):
        assert a["tokens"] == b["tokens"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


def test_schedule_warms_up_then_decays_to_min_lr():
    config = load_config("tiny", ["optimizer.lr=1e-2", "optimizer.min_lr=1e-3"]).optimizer
    config.warmup_steps = 10
    assert lr_at(5, config, 110) == pytest.approx(5e-3)
    assert lr_at(10, config, 110) == pytest.approx(1e-2)
    assert lr_at(60, config, 110) == pytest.approx(5.5e-3)
    assert lr_at(110, config, 110) == pytest.approx(1e-3)
