"""Benchmark: tokens/s of trainer.train() against a minimal plain-PyTorch loop.

Both run the same model, batches and steps in this process; train() also reports every
`log_every` steps, evaluates once and writes checkpoints every 100 steps. The ratio
(train / plain) shows what the trainer's hooks cost: it must stay >= 0.97.

The comparison runs on one thread and counts the process's CPU seconds (user + system), best
of several alternating runs: on a shared 2-core machine wall time swings by far more than 3%,
while CPU seconds on one thread barely move, and the hooks cost the same on any thread count.
Then the tiny preset runs as a sweep trial would (all threads, wall clock), and its wall time
and tokens/s are printed.

    python bench/trainer.py [--steps 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# Python puts this script's folder first on sys.path, where this file's name would shadow the
# `trainer` package (and bench/logging.py the standard library's logging): drop it.
_HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from trainer.config import Config, load_config  # noqa: E402
from trainer.data import get_batch, load_dataset  # noqa: E402
from trainer.model import TransformerLM  # noqa: E402
from trainer.train import lr_at, make_optimizer, pick_device, train  # noqa: E402


def plain_loop(config: Config) -> float:
    """The reference: the same training steps with nothing else. Returns CPU seconds."""
    started = time.process_time()
    m, t = config.model, config.train
    device = pick_device(t.device)
    torch.manual_seed(t.seed)
    dataset = load_dataset(config.data, m.vocab_size)
    model = TransformerLM(m).to(device)
    optimizer = make_optimizer(model, config.optimizer, device)
    batches = torch.Generator().manual_seed(t.seed)
    for step in range(1, t.max_steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config.optimizer, t.max_steps)
        x, y = get_batch(dataset.train, t.batch_size, m.context_length, batches)
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.optimizer.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.process_time() - started


def trainer_run(config: Config) -> float:
    """train() with reports, one evaluation and checkpoints. Returns CPU seconds."""
    reports = []
    with tempfile.TemporaryDirectory() as checkpoint_dir:
        started = time.process_time()
        train(config, report=reports.append, checkpoint_dir=checkpoint_dir)
        return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    # Hooks on (log every 10, checkpoint every 100); the one final evaluation scores one batch
    # and no sample is drawn, so the comparison is of the training steps and the hooks.
    config = load_config(
        "tiny",
        {
            "train.max_steps": args.steps,
            "train.eval_every": args.steps,
            "train.eval_batches": 1,
            "train.checkpoint_every": 100,
            "train.sample_tokens": 0,
        },
    )
    tokens = args.steps * config.train.batch_size * config.model.context_length
    load_dataset(config.data, config.model.vocab_size)  # build the cache outside the timing
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    plain_loop(load_config("tiny", {"train.max_steps": 5}))  # warm up

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    plain, hooked = [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(config))
        hooked.append(trainer_run(config))
    ratio = min(plain) / min(hooked)
    note = f"1 thread, CPU seconds, best of {args.repeats}"
    print(f"plain loop : {tokens / min(plain):10,.0f} tokens/s  ({note})")
    print(f"train()    : {tokens / min(hooked):10,.0f} tokens/s  ({note})")
    print(f"ratio train/plain: {ratio:.3f}  (target >= 0.97)")

    torch.set_num_threads(threads)
    tiny = load_config("tiny")
    reports = []
    started = time.perf_counter()
    result = train(tiny, report=reports.append)
    wall = time.perf_counter() - started
    step_rates = [r["tokens_per_s"] for r in reports if "tokens_per_s" in r]
    print(
        f"tiny preset: {wall:.1f} s wall for {result['step']} steps, "
        f"{result['tokens'] / wall:,.0f} tokens/s overall, "
        f"{sorted(step_rates)[len(step_rates) // 2]:,.0f} tokens/s median while training, "
        f"val_loss {result['val_loss']:.3f}"
    )


if __name__ == "__main__":
    main()
