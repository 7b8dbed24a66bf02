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
import random
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainer.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from trainer.config import (
    Config,
    ConfigError,
    OptimizerConfig,
    config_from_dict,
    config_to_dict,
)
from trainer.data import END_OF_TEXT, Dataset, get_batch, load_dataset
from trainer.gpu import GpuMeter, flops_per_token
from trainer.model import TransformerLM, generate

EVAL_SEED = 1234  # every evaluation, in every trial, scores the same validation windows


Report = Callable[[dict[str, Any]], bool | None]


@dataclass
class _Run:
    """What one call of `train` trains with, built once by `_prepare`."""

    config: Config
    device: torch.device
    dataset: Dataset
    model: TransformerLM
    forward: Callable  # the model, compiled when train.compile says so
    optimizer: torch.optim.AdamW
    batches: torch.Generator  # the training batches' sampler
    eval_set: list
    autocast: contextlib.AbstractContextManager
    meter: GpuMeter  # memory, utilisation, MFU (trainer.gpu)
    params: list[torch.nn.Parameter]  # those the gradient norm is clipped over
    checkpoint_path: Path | None
    tokens_per_step: int

    def save(self, state: dict[str, Any]) -> None:
        save_checkpoint(
            self.checkpoint_path, self.config, self.model, self.optimizer, self.batches, state
        )


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
    config = config if isinstance(config, Config) else config_from_dict(config)
    run, state = _prepare(config, checkpoint_dir)
    t = config.train
    resumed_from = saved_step = state["step"]
    elapsed_before = state["elapsed_s"]

    def elapsed() -> float:  # seconds of training, those before a resume included
        return elapsed_before + time.perf_counter() - started

    loss_sum = torch.tensor(state["loss_sum"], device=run.device)
    loss_count = state["loss_count"]
    last: dict[str, Any] = {}
    outcome = "completed"
    interval_start, interval_step = time.perf_counter(), resumed_from
    saved_at = loop_started = interval_start

    for step in range(resumed_from + 1, t.max_steps + 1):
        lr, grad_norm = _optimizer_step(run, step, loss_sum)
        loss_count += t.grad_accum_steps
        is_last = step == t.max_steps
        do_log, do_eval = step % t.log_every == 0 or is_last, step % t.eval_every == 0 or is_last
        do_save = _checkpoint_due(run, step, saved_at)
        if not (do_log or do_eval or do_save):
            continue
        now = time.perf_counter()
        metrics: dict[str, Any] = {"step": step}
        if do_log:
            train_loss = loss_sum.item() / loss_count
            timing = (now - interval_start, step - interval_step, elapsed())
            metrics |= _train_metrics(run, step, lr, grad_norm, train_loss, *timing)
            loss_sum.zero_()
            loss_count = 0
            if not math.isfinite(train_loss):
                outcome = "diverged"
        if do_eval and outcome != "diverged":
            metrics |= evaluate(run.forward, run.eval_set, run.autocast)
            best = state["best_val_loss"]
            state["best_val_loss"] = min(math.inf if best is None else best, metrics["val_loss"])
        if do_log or do_eval:
            last |= metrics
        stop = bool((do_log or do_eval) and report and report(metrics))
        if outcome == "diverged":
            break
        if do_save or (stop and run.checkpoint_path):
            state |= {"step": step, "elapsed_s": elapsed(), "train_loss": last.get("train_loss")}
            state |= {"loss_sum": loss_sum.item(), "loss_count": loss_count}
            run.save(state)
            saved_step, saved_at = step, time.perf_counter()
        if stop and not is_last:  # asked to stop at its last step: its work is done
            outcome = "stopped"
            break
        interval_start, interval_step = time.perf_counter(), step

    if outcome == "completed":
        last = _complete(run, state, last, saved_step, elapsed())
    trained_s = time.perf_counter() - loop_started
    return _result(run, outcome, last, state, resumed_from, elapsed(), trained_s)


def _prepare(config: Config, checkpoint_dir: str | Path | None) -> tuple[_Run, dict[str, Any]]:
    """The run's model, optimizer, data and samplers, seeded (in this order: the RNGs see the
    same draws in every run of this config), and its loop state: a fresh run's, or the one
    the checkpoint in `checkpoint_dir` holds, with every RNG restored."""
    m, t = config.model, config.train
    device = pick_device(t.device)
    _seed_everything(t.seed)
    dataset = load_dataset(config.data, m.vocab_size)
    model = TransformerLM(m).to(device)
    meter = GpuMeter(device)
    optimizer = make_optimizer(model, config.optimizer, device)
    batches = torch.Generator().manual_seed(t.seed)
    eval_set = _eval_batches(dataset, config, device)
    run = _Run(
        config,
        device,
        dataset,
        model,
        forward=model,
        optimizer=optimizer,
        batches=batches,
        eval_set=eval_set,
        autocast=_autocast(device),
        meter=meter,
        params=[p for p in model.parameters() if p.requires_grad],
        checkpoint_path=Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None,
        tokens_per_step=t.batch_size * t.grad_accum_steps * m.context_length,
    )
    state = {"step": 0, "elapsed_s": 0.0, "best_val_loss": None, "loss_sum": 0.0, "loss_count": 0}
    if run.checkpoint_path and run.checkpoint_path.exists():
        state = load_checkpoint(run.checkpoint_path, config, model, optimizer, batches)
    run.forward = torch.compile(model) if t.compile else model
    return run, state


def _optimizer_step(run: _Run, step: int, loss_sum: torch.Tensor) -> tuple[float, torch.Tensor]:
    """One optimizer step over `grad_accum_steps` batches, their losses added to `loss_sum`
    (on the device: no Python number is read here); returns the lr and the gradient norm."""
    t, m = run.config.train, run.config.model
    lr = lr_at(step, run.config.optimizer, t.max_steps)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    for _ in range(t.grad_accum_steps):
        x, y = get_batch(run.dataset.train, t.batch_size, m.context_length, run.batches)
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        with run.autocast:
            logits = run.forward(x)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        (loss / t.grad_accum_steps).backward()
        loss_sum += loss.detach()
    max_norm = run.config.optimizer.grad_clip or math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(run.params, max_norm)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return lr, grad_norm


def _train_metrics(
    run: _Run,
    step: int,
    lr: float,
    grad_norm: torch.Tensor,
    train_loss: float,
    interval_s: float,
    interval_steps: int,
    elapsed_s: float,
) -> dict[str, Any]:
    """A logged step's training metrics: the mean loss and the pace since the last log."""
    return {
        "tokens": step * run.tokens_per_step,
        "elapsed_s": elapsed_s,
        "train_loss": train_loss,
        "lr": lr,
        "grad_norm": grad_norm.item(),
        "step_time_s": interval_s / interval_steps,
        "tokens_per_s": interval_steps * run.tokens_per_step / interval_s,
        "memory_mb": memory_mb(run.device),
    } | run.meter.sample()


def _complete(
    run: _Run, state: dict[str, Any], last: dict[str, Any], saved_step: int, elapsed_s: float
) -> dict[str, Any]:
    """A run that reached max_steps: its final state checkpointed; returns its last metrics
    (evaluated again for a run resumed from a finished one, which logged nothing)."""
    max_steps = run.config.train.max_steps
    if not last:
        last = {"step": max_steps, "train_loss": state.get("train_loss")}
        last |= evaluate(run.forward, run.eval_set, run.autocast)
    state |= {"step": max_steps, "train_loss": last.get("train_loss"), "elapsed_s": elapsed_s}
    if run.checkpoint_path and saved_step != max_steps:
        run.save(state)
    return last


def _checkpoint_due(run: _Run, step: int, saved_at: float) -> bool:
    """Every `checkpoint_every` steps, and when `checkpoint_seconds` passed since the last."""
    t = run.config.train
    if not run.checkpoint_path:
        return False
    overdue = t.checkpoint_seconds and time.perf_counter() - saved_at >= t.checkpoint_seconds
    return bool(t.checkpoint_every and step % t.checkpoint_every == 0) or bool(overdue)


def _result(
    run: _Run,
    outcome: str,
    last: dict[str, Any],
    state: dict[str, Any],
    resumed_from: int,
    elapsed_s: float,
    trained_s: float,
) -> dict[str, Any]:
    """What `train` returns: the outcome, the last logged metrics, the resolved config and
    the GPU's figures over the `trained_s` seconds of this call's loop."""
    if outcome == "diverged":
        last = last | {"val_loss": math.nan, "val_perplexity": math.nan, "val_accuracy": math.nan}
    step = last.get("step", state["step"])
    trained = (step - resumed_from) * run.tokens_per_step
    gpu = run.meter.summary(trained, trained_s, flops_per_token(run.config.model))
    return {
        "outcome": outcome,
        "step": step,
        "tokens": step * run.tokens_per_step,
        "elapsed_s": elapsed_s,
        "train_loss": last.get("train_loss"),
        "val_loss": last.get("val_loss"),
        "val_perplexity": last.get("val_perplexity"),
        "val_accuracy": last.get("val_accuracy"),
        "best_val_loss": state["best_val_loss"],
        "num_params": run.model.num_params(),
        "resumed_from_step": resumed_from,
        "sample": _sample(run.model, run.dataset, run.config) if outcome == "completed" else "",
        "config": config_to_dict(run.config),
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
