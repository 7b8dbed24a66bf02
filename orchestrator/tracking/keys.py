"""Where a trainer's metrics go in a wandb run, so that each charts against the right axis.

Metric names: the trainer's flat report names map onto wandb sections that chart against the
right x-axis: `train_loss` -> `train/loss`, `val_perplexity` -> `val/perplexity`,
`lr` -> `train/lr`, `tokens_per_s` -> `perf/tokens_per_s`; `step`, `epoch`, `tokens` and
`elapsed_s` stay top-level and serve as step metrics. `train/*`, `val/*`, `perf/*` and
`custom/*` chart against `step`; `wallclock/*` (a copy of the train and validation losses)
against `elapsed_s` seconds; `epoch/*` against `epoch`.
"""

from __future__ import annotations

from typing import Any

TOP_LEVEL_KEYS = {"step", "epoch", "elapsed_s", "tokens"}
PERF_KEYS = {"step_time_s", "tokens_per_s", "memory_mb", "mfu"}
PERF_KEYS |= {"gpu_peak_memory_mb", "gpu_total_memory_mb", "gpu_util"}  # on a GPU: trainer.gpu
TRAIN_KEYS = {"lr": "train/lr", "learning_rate": "train/lr", "grad_norm": "train/grad_norm"}


def wandb_key(name: str, section: str = "") -> str:
    """The wandb history key for a trainer metric name (see the module docstring)."""
    if "/" in name or name in TOP_LEVEL_KEYS:
        return name
    if name in PERF_KEYS:
        return f"perf/{name}"
    if name in TRAIN_KEYS:
        return TRAIN_KEYS[name]
    for prefix in ("train", "val"):
        if name.startswith(prefix + "_"):
            return f"{prefix}/{name.removeprefix(prefix + '_')}"
    return f"{section}/{name}" if section else name


def define_metrics(run: Any) -> None:
    """Tell a wandb run which step metric each section charts against (see above)."""
    run.define_metric("step")
    run.define_metric("elapsed_s")
    run.define_metric("epoch")
    for section in ("train", "val", "perf", "custom"):
        run.define_metric(f"{section}/*", step_metric="step")
    run.define_metric("wallclock/*", step_metric="elapsed_s")
    run.define_metric("epoch/*", step_metric="epoch")
