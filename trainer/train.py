"""The training loop: train(config, report, checkpoint_dir) -> final metrics.

AdamW with a warm-up + cosine schedule, global gradient clipping and gradient accumulation.
Metrics go to `report` as one flat dict per logged step; the hot loop touches no Python
numbers on steps that do not log, so reporting costs almost nothing. Checkpoints hold every
bit of state that the rest of the run depends on (model, optimizer, all RNGs, the batch
sampler, the running loss), so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import resource
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainer.config import (
    Config,
    ConfigError,
    OptimizerConfig,
    config_from_dict,
    config_to_dict,
    flatten_overrides,
)
from trainer.data import END_OF_TEXT, Dataset, get_batch, load_dataset
from trainer.gpu import GpuMeter, flops_per_token
from trainer.model import TransformerLM, generate

CHECKPOINT_NAME = "checkpoint.pt"
EVAL_SEED = 1234  # every evaluation, in every trial, scores the same validation windows

# Keys that do not change what a run computes: a checkpoint may be resumed under new values.
_FREE_KEYS = {"data.cache_dir", "train.log_every", "train.eval_every", "train.eval_batches"}
_FREE_KEYS |= {"train.checkpoint_every", "train.checkpoint_seconds", "train.device"}
_FREE_KEYS |= {"train.compile"}

Report = Callable[[dict[str, Any]], bool | None]


def train(
    config: Config | Mapping[str, Any],
    report: Report | None = None,
    checkpoint_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train a language model as `config` says; returns the final metrics and resolved config.

    `report(metrics)` gets one flat dict per logged step; returning True saves a checkpoint
    and stops the run (outcome "stopped"). A NaN/inf loss ends it with outcome "diverged".
    With `checkpoint_dir`, an existing checkpoint there is resumed from.
    """
    started = time.perf_counter()
    if not isinstance(config, Config):
        config = config_from_dict(config)
    m, t = config.model, config.train
    device = pick_device(t.device)
    _seed_everything(t.seed)
    dataset = load_dataset(config.data, m.vocab_size)
    model = TransformerLM(m).to(device)
    meter = GpuMeter(device)  # memory, utilisation, MFU (trainer.gpu)
    optimizer = make_optimizer(model, config.optimizer, device)
    batches = torch.Generator().manual_seed(t.seed)
    eval_set = _eval_batches(dataset, config, device)
    checkpoint_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None

    state = {"step": 0, "elapsed_s": 0.0, "best_val_loss": None, "loss_sum": 0.0, "loss_count": 0}
    if checkpoint_path and checkpoint_path.exists():
        state = _load_checkpoint(checkpoint_path, config, model, optimizer, batches)
    resumed_from = saved_step = state["step"]
    elapsed_before = state["elapsed_s"]

    forward = torch.compile(model) if t.compile else model
    autocast = _autocast(device)
    tokens_per_step = t.batch_size * t.grad_accum_steps * m.context_length
    params = [p for p in model.parameters() if p.requires_grad]
    max_norm = config.optimizer.grad_clip or math.inf
    loss_sum = torch.tensor(state["loss_sum"], device=device)
    loss_count = state["loss_count"]
    last: dict[str, Any] = {}
    outcome = "completed"
    interval_start, interval_step = time.perf_counter(), resumed_from
    saved_at = loop_started = interval_start

    for step in range(resumed_from + 1, t.max_steps + 1):
        lr = lr_at(step, config.optimizer, t.max_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        for _ in range(t.grad_accum_steps):
            x, y = get_batch(dataset.train, t.batch_size, m.context_length, batches)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast:
                logits = forward(x)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
            (loss / t.grad_accum_steps).backward()
            loss_sum += loss.detach()
        loss_count += t.grad_accum_steps
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        is_last = step == t.max_steps
        do_log, do_eval = step % t.log_every == 0 or is_last, step % t.eval_every == 0 or is_last
        do_save = bool(checkpoint_path and t.checkpoint_every and step % t.checkpoint_every == 0)
        overdue = t.checkpoint_seconds and time.perf_counter() - saved_at >= t.checkpoint_seconds
        do_save = do_save or bool(checkpoint_path and overdue)
        if not (do_log or do_eval or do_save):
            continue
        now = time.perf_counter()
        metrics: dict[str, Any] = {"step": step}
        if do_log:
            interval = now - interval_start
            train_loss = loss_sum.item() / loss_count
            metrics |= {
                "tokens": step * tokens_per_step,
                "elapsed_s": elapsed_before + now - started,
                "train_loss": train_loss,
                "lr": lr,
                "grad_norm": grad_norm.item(),
                "step_time_s": interval / (step - interval_step),
                "tokens_per_s": (step - interval_step) * tokens_per_step / interval,
                "memory_mb": memory_mb(device),
            } | meter.sample()
            loss_sum.zero_()
            loss_count = 0
            if not math.isfinite(train_loss):
                outcome = "diverged"
        if do_eval and outcome != "diverged":
            metrics |= evaluate(forward, eval_set, autocast)
            best = state["best_val_loss"]
            state["best_val_loss"] = min(
                best if best is not None else math.inf, metrics["val_loss"]
            )
        stop = False
        if do_log or do_eval:
            last |= metrics
            stop = bool(report(metrics)) if report else False
        if outcome == "diverged":
            break
        if do_save or (stop and checkpoint_path):
            state |= {"step": step, "elapsed_s": elapsed_before + time.perf_counter() - started}
            state |= {"loss_sum": loss_sum.item(), "loss_count": loss_count}
            state["train_loss"] = last.get("train_loss")
            _save_checkpoint(checkpoint_path, config, model, optimizer, batches, state)
            saved_step, saved_at = step, time.perf_counter()
        if stop and not is_last:  # asked to stop at its last step: its work is done
            outcome = "stopped"
            break
        interval_start, interval_step = time.perf_counter(), step

    if outcome == "completed":
        if not last:  # resumed from a finished run: nothing was logged in this call
            last = {"step": t.max_steps, "train_loss": state.get("train_loss")}
            last |= evaluate(forward, eval_set, autocast)
        state |= {"step": t.max_steps, "train_loss": last.get("train_loss")}
        state["elapsed_s"] = elapsed_before + time.perf_counter() - started
        if checkpoint_path and saved_step != t.max_steps:
            _save_checkpoint(checkpoint_path, config, model, optimizer, batches, state)
    if outcome == "diverged":
        last |= {"val_loss": math.nan, "val_perplexity": math.nan, "val_accuracy": math.nan}

    step = last.get("step", state["step"])
    trained = (step - resumed_from) * tokens_per_step
    gpu = meter.summary(trained, time.perf_counter() - loop_started, flops_per_token(m))
    return {
        "outcome": outcome,
        "step": step,
        "tokens": step * tokens_per_step,
        "elapsed_s": elapsed_before + time.perf_counter() - started,
        "train_loss": last.get("train_loss"),
        "val_loss": last.get("val_loss"),
        "val_perplexity": last.get("val_perplexity"),
        "val_accuracy": last.get("val_accuracy"),
        "best_val_loss": state["best_val_loss"],
        "num_params": model.num_params(),
        "resumed_from_step": resumed_from,
        "sample": _sample(model, dataset, config) if outcome == "completed" else "",
        "config": config_to_dict(config),
    } | gpu


def pick_device(requested: str) -> torch.device:
    """ "auto": the first visible CUDA device if there is one, else the CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' requested but no CUDA device is visible")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    torch.set_float32_matmul_precision("high")
    return torch.device("cuda")


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a CUDA device that supports it; full precision elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_optimizer(
    model: torch.nn.Module, config: OptimizerConfig, device: torch.device
) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (not norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups,
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
        fused=device.type == "cuda",
    )


def lr_at(step: int, config: OptimizerConfig, max_steps: int) -> float:
    """Linear warm-up to `lr` over warmup_steps, then cosine decay to min(min_lr, lr)."""
    if step <= config.warmup_steps:
        return config.lr * step / config.warmup_steps
    floor = min(config.min_lr, config.lr)
    progress = (step - config.warmup_steps) / max(1, max_steps - config.warmup_steps)
    return floor + 0.5 * (config.lr - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def memory_mb(device: torch.device) -> float:
    """Peak memory: CUDA memory allocated, or the process's peak resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _eval_batches(dataset: Dataset, config: Config, device: torch.device) -> list:
    """The fixed validation windows every evaluation scores."""
    generator = torch.Generator().manual_seed(EVAL_SEED)
    t = config.train
    return [
        tuple(
            a.to(device)
            for a in get_batch(dataset.val, t.batch_size, config.model.context_length, generator)
        )
        for _ in range(t.eval_batches)
    ]


@torch.no_grad()
def evaluate(forward: Callable, eval_set: list, autocast) -> dict[str, float]:
    """Mean validation loss, its perplexity, and next-token accuracy."""
    total_loss, correct, count = 0.0, 0, 0
    forward.eval()
    for x, y in eval_set:
        with autocast:
            logits = forward(x)
        total_loss += F.cross_entropy(
            logits.flatten(0, 1).float(), y.flatten(), reduction="sum"
        ).item()
        correct += int((logits.argmax(-1) == y).sum())
        count += y.numel()
    forward.train()
    val_loss = total_loss / count
    return {
        "val_loss": val_loss,
        "val_perplexity": math.exp(min(val_loss, 700.0)),
        "val_accuracy": correct / count,
    }


def _sample(model: TransformerLM, dataset: Dataset, config: Config) -> str:
    """The sample prompt continued by the trained model (temperature, top-p)."""
    t = config.train
    if t.sample_tokens == 0:
        return ""
    model.eval()
    prompt = dataset.encode(t.sample_prompt) or dataset.encode(END_OF_TEXT)
    stop = dataset.tokenizer.token_to_id(END_OF_TEXT) if dataset.tokenizer else None
    generator = torch.Generator().manual_seed(t.seed)
    new = generate(
        model, prompt, t.sample_tokens, t.sample_temperature, t.sample_top_p, generator, stop
    )
    return dataset.decode(prompt + new)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def _save_checkpoint(path: Path, config: Config, model, optimizer, batches, state: dict) -> None:
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


def _load_checkpoint(path: Path, config: Config, model, optimizer, batches) -> dict:
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
        if key not in _FREE_KEYS and not key.startswith("train.sample_") and old.get(key) != value:
            raise ConfigError(
                f"{key}: {path} was written with {key}={old.get(key)!r}, this run has {value!r}"
            )
