"""Benchmark the GPU path on one GPU, in one command, in under 8 minutes.

    python3 bench/gpu.py [--out FILE] [--budget SECONDS]   # on a machine with a GPU
    python3 bench/gpu.py --smoke                          # every part, briefly, on a CPU

Three parts, each with its own time budget (a part out of time stops and says so; the next
still runs), figures printed and written as JSON to `--out` (default `$OUT/gpu_bench.json`,
else `./gpu_bench.json`):

1. `train_vs_bare`: tinystories-17m (trainer/presets) in bf16: steady tokens/s and MFU of
   `trainer.train()` against a bare loop of the same model, batches and optimizer step.
2. `compile`: the same two with `torch.compile` (`train.compile: true`).
3. `packing`: 8 tiny-preset trials as plain subprocesses (`--trial`), one at a time on the
   GPU (what one trial per GPU gives) and packed k = 2, 4, 8 to the device at once, as trials
   per GPU-hour; with each trial's peak memory and what `gpus: auto` would pack.

`--smoke` runs the same code on a CPU with a micro model, one thread, 2 trials packed 1 and
2, and `torch.compile` on its eager backend (dynamo traces; inductor builds nothing): it
proves the script end to end, its figures mean nothing.

It needs only the standard library, torch and `trainer` (with numpy, tokenizers and pyyaml,
which `trainer` imports): no Ray, Optuna or wandb, nothing to install. The corpus is random
token ids written as a `.npy` at the start (throughput does not depend on the text), so
nothing is downloaded and no tokenizer is trained.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

# This script's folder first on sys.path would shadow the `trainer` package (bench/trainer.py)
# and the standard library's logging (bench/logging.py): put the repository there instead.
_HERE = Path(__file__).resolve().parent
sys.path = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

try:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from trainer.config import Config, apply_overrides, load_config
    from trainer.data import get_batch, load_dataset
    from trainer.gpu import flops_per_token, peak_flops
    from trainer.model import TransformerLM
    from trainer.train import lr_at, make_optimizer, pick_device, train
except ImportError as error:  # say what is missing in one line, not a traceback
    sys.exit(f"bench/gpu.py: cannot import {error.name!r} ({error}); it needs torch and trainer")

BUDGETS = {"train_vs_bare": 95.0, "compile": 165.0, "packing": 170.0}  # seconds, of 450
WATCHDOG_SECONDS = 470.0  # past this the figures so far are written and the process ends
SMOKE_BUDGETS = {"train_vs_bare": 40.0, "compile": 90.0, "packing": 90.0}
PACKED = (1, 8, 4, 2)  # one per GPU first (the baseline), then the most packed
TRIALS = 8
CHILDREN: set[subprocess.Popen] = set()  # the trials' subprocesses running now


class OutOfTime(Exception):
    """A part's budget ran out: it stops, keeping what it measured."""


class Clock:
    """A part's deadline."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.left() <= 0:
            raise OutOfTime


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# ------------------------------------------------------------------ the corpus and configs


def write_corpus(folder: Path, vocab_size: int, tokens: int) -> Path:
    """Random uint16 token ids as `.npy`: a corpus the trainer loads as is."""
    path = folder / f"tokens-{vocab_size}.npy"
    generator = np.random.default_rng(0)
    np.save(path, generator.integers(0, vocab_size, tokens, dtype=np.uint16))
    return path


def model_config(smoke: bool, corpus: Path, steps: int, compile_: bool) -> Config:
    """tinystories-17m (a micro model in a smoke run) on the corpus; one evaluation at the
    end, no checkpoints, no sample: only the training loop is timed."""
    overrides: dict[str, Any] = {
        "data.source": str(corpus),
        "train.max_steps": steps,
        "train.log_every": 10 if not smoke else 2,
        "train.eval_every": 10**9,
        "train.eval_batches": 2,
        "train.sample_tokens": 0,
        "train.checkpoint_seconds": 0,
        "train.compile": compile_,
        "optimizer.warmup_steps": 10,
    }
    if smoke:
        overrides |= {"model.d_model": 32, "model.num_layers": 2, "model.num_heads": 2}
        overrides |= {"model.d_ff": 64, "model.context_length": 32, "train.batch_size": 4}
    return load_config("tinystories-17m", overrides)


# ------------------------------------------------------------------ parts 1 and 2


def bare_loop(config: Config, warmup: int, clock: Clock, seconds: float) -> dict[str, Any]:
    """The reference: the trainer's model, batches, bf16 autocast, AdamW and clipping, with
    nothing else. Timed after `warmup` steps (compilation happens there) for about
    `seconds`, in blocks of 10 steps."""
    m, t = config.model, config.train
    device = pick_device(t.device)
    torch.manual_seed(0)
    model = TransformerLM(m).to(device)
    forward = torch.compile(model) if t.compile else model
    optimizer = make_optimizer(model, config.optimizer, device)
    dataset = load_dataset(config.data, m.vocab_size)
    batches = torch.Generator().manual_seed(0)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    params = [p for p in model.parameters() if p.requires_grad]

    def step(number: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(number, config.optimizer, t.max_steps)
        x, y = get_batch(dataset.train, t.batch_size, m.context_length, batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            logits = forward(x)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.optimizer.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    started = time.perf_counter()
    for number in range(1, warmup + 1):
        step(number)
        clock.check()
    sync()
    warm_s = time.perf_counter() - started
    measured, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds and clock.left() > 0:
        for _ in range(10):
            measured += 1
            step(warmup + measured)
        sync()
    elapsed = time.perf_counter() - began
    tokens = measured * t.batch_size * m.context_length
    return {"steps": measured, "warmup_s": round(warm_s, 2), "tokens_per_s": tokens / elapsed}


def trainer_run(config: Config, warmup: int, clock: Clock) -> dict[str, Any]:
    """`train()` as a sweep runs it (reports every log_every steps): its steady tokens/s from
    its reports after `warmup` steps, and its own whole-run figures. Out of time, it is
    asked to stop, as a sweep stops a trial."""
    reports: list[dict[str, Any]] = []

    def report(metrics: dict[str, Any]) -> bool:
        reports.append(metrics)
        return clock.left() <= 0

    result = train(config, report=report)
    logged = [r for r in reports if "elapsed_s" in r and r["step"] >= warmup]
    steady = None
    if len(logged) >= 2:
        first, last = logged[0], logged[-1]
        steady = (last["tokens"] - first["tokens"]) / (last["elapsed_s"] - first["elapsed_s"])
    return {
        "steps": result["step"],
        "tokens_per_s": steady,
        "run_tokens_per_s": result.get("tokens_per_s"),  # whole loop, warm-up included
        "run_mfu": result.get("mfu"),
        "gpu_peak_memory_mb": result.get("gpu_peak_memory_mb"),
        "gpu_util_mean": result.get("gpu_util_mean"),
        "train_loss": result.get("train_loss"),
    }


def compare(smoke: bool, corpus: Path, compile_: bool, clock: Clock) -> dict[str, Any]:
    """A bare loop, then `train()` over as many steps as the bare loop timed."""
    warmup = 3 if smoke else (30 if compile_ else 20)
    seconds = 1.0 if smoke else (12.0 if compile_ else 15.0)
    probe = model_config(smoke, corpus, 10**6, compile_)
    bare = bare_loop(probe, warmup, clock, seconds)
    clock.check()
    steps = warmup + max(bare["steps"], 20)
    config = model_config(smoke, corpus, steps, compile_)
    trained = trainer_run(config, warmup, clock)
    flops = flops_per_token(config.model)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    peak = peak_flops(name)
    out: dict[str, Any] = {"flops_per_token": flops, "device_peak_flops": peak}
    for label, figures in (("bare", bare), ("train", trained)):
        rate = figures["tokens_per_s"]
        figures["mfu"] = rate * flops / peak if peak and rate else None
        out[label] = figures
    if trained["tokens_per_s"]:
        out["train_over_bare"] = trained["tokens_per_s"] / bare["tokens_per_s"]
    for label, figures in (("bare loop", bare), ("train()", trained)):
        mfu = figures["mfu"]
        print(
            f"  {label}: {figures['tokens_per_s'] or 0:,.0f} tokens/s over {figures['steps']} "
            f"steps, MFU {'-' if mfu is None else f'{100 * mfu:.1f}%'}",
            flush=True,
        )
    print(f"  train() / bare loop: {out.get('train_over_bare', 0):.3f}", flush=True)
    return out


# ------------------------------------------------------------------ part 3


def trial_config(smoke: bool, corpus: Path) -> dict[str, Any]:
    """One of the 8 tiny trials: the tiny preset, a fixed number of steps."""
    return {
        "preset": "tiny",
        "overrides": {
            "data.source": str(corpus),
            "train.max_steps": 20 if smoke else 500,
            "train.batch_size": 8 if smoke else 64,
            "train.log_every": 10 if smoke else 100,
            "train.eval_every": 10**9,
            "train.eval_batches": 2,
            "train.sample_tokens": 0,
            "train.checkpoint_seconds": 0,
        },
    }


def run_trial(spec: dict[str, Any]) -> dict[str, Any]:
    """The body of one trial's subprocess (`--trial`): train, return its figures."""
    started = time.perf_counter()
    config = load_config(spec["preset"], {})
    config = apply_overrides(config, spec["overrides"])
    result = train(config)
    return {
        "seconds": time.perf_counter() - started,
        "tokens_per_s": result.get("tokens_per_s"),
        "gpu_peak_memory_mb": result.get("gpu_peak_memory_mb"),
        "gpu_name": result.get("gpu_name"),
        "mfu": result.get("mfu"),
    }


def run_batch(specs: list[dict[str, Any]], at_once: int, clock: Clock) -> dict[str, Any]:
    """The trials as subprocesses, `at_once` at a time on the one device."""
    pending, running, done = list(specs), [], []
    began = time.perf_counter()
    command = [sys.executable, str(Path(__file__).resolve()), "--trial"]
    try:
        while pending or running:
            while pending and len(running) < at_once:
                spec = json.dumps(pending.pop(0))
                process = subprocess.Popen(
                    [*command, spec], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                running.append(process)
                CHILDREN.add(process)
            for process in [p for p in running if p.poll() is not None]:
                running.remove(process)
                CHILDREN.discard(process)
                out, err = process.communicate()
                if process.returncode != 0:
                    raise RuntimeError(f"a trial failed: {err.strip().splitlines()[-1:]}")
                done.append(json.loads(out.strip().splitlines()[-1]))
            clock.check()
            time.sleep(0.05)
    finally:
        for process in running:
            process.kill()
            process.wait()
            CHILDREN.discard(process)
    wall = time.perf_counter() - began
    peaks = [d["gpu_peak_memory_mb"] for d in done if d["gpu_peak_memory_mb"] is not None]
    return {
        "at_once": at_once,
        "trials": len(done),
        "wall_s": round(wall, 2),
        "trials_per_gpu_hour": round(len(done) * 3600 / wall, 1),
        "mean_trial_s": round(statistics.mean(d["seconds"] for d in done), 2),
        "mean_tokens_per_s": statistics.mean(d["tokens_per_s"] or 0 for d in done),
        "gpu_peak_memory_mb": max(peaks) if peaks else None,
    }


def packing(smoke: bool, corpus: Path, clock: Clock) -> dict[str, Any]:
    """8 trials one at a time, then k at a time on the one device."""
    count, ks = (2, (1, 2)) if smoke else (TRIALS, PACKED)
    specs = [trial_config(smoke, corpus) for _ in range(count)]
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"trials": count, "rows": rows}
    for at_once in ks:
        try:
            row = run_batch(specs, at_once, clock)
        except OutOfTime:
            out["out_of_time_at"] = at_once
            print(f"  packed {at_once}: out of time", flush=True)
            break
        rows.append(row)
        alone = rows[0]["trials_per_gpu_hour"]
        row["vs_one_per_gpu"] = round(row["trials_per_gpu_hour"] / alone, 3)
        print(
            f"  {at_once} per GPU: {row['trials_per_gpu_hour']:,.0f} trials/GPU-hour "
            f"({row['vs_one_per_gpu']:.2f}x), wall {row['wall_s']:.1f} s, "
            f"peak {row['gpu_peak_memory_mb'] or 0:.0f} MiB each (0: no GPU)",
            flush=True,
        )
    peak = rows[0]["gpu_peak_memory_mb"] if rows else None
    if peak and torch.cuda.is_available():
        out["gpus_auto_would_pack"] = _auto_packing(peak)
    return out


def _auto_packing(peak_mb: float) -> int | None:
    """What `gpus: auto` would choose for this peak on this device (run.packing's arithmetic,
    a pure module: no Ray is imported); None if orchestrator is not there."""
    try:
        from orchestrator.run.packing import trials_per_device
    except ImportError:
        return None
    total = torch.cuda.get_device_properties(0).total_memory / 2**20
    return trials_per_device(peak_mb, total, cap=64)


# ------------------------------------------------------------------ the whole


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {"device": torch.cuda.get_device_name(0), "memory_mb": props.total_memory / 2**20}
        info["bf16_peak_flops"] = peak_flops(info["device"])
        try:
            torch.cuda.utilization(0)
            info["nvml"] = True
        except Exception as error:
            info["nvml"] = f"no: {type(error).__name__}"
    else:
        info["device"] = "cpu"
    return info


def _watchdog(seconds: float, path: Path, figures: dict[str, Any]) -> None:
    """A part stuck where its clock cannot stop it (a compile, a hung kernel): after
    `seconds` in all, write what was measured and end the process, children too."""
    time.sleep(seconds)
    figures["watchdog"] = f"stopped after {seconds:.0f} s"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, default=str))
    print(f"bench/gpu.py: stopped after {seconds:.0f} s; figures so far in {path}", flush=True)
    for process in list(CHILDREN):
        process.kill()
    os._exit(3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="every part in seconds, on a CPU")
    parser.add_argument("--out", help="the JSON file of figures")
    parser.add_argument("--only", nargs="*", choices=list(BUDGETS), help="these parts only")
    parser.add_argument("--trial", help=argparse.SUPPRESS)  # one packed trial's subprocess
    args = parser.parse_args()
    if args.trial:
        if not torch.cuda.is_available():
            torch.set_num_threads(1)
        print(json.dumps(run_trial(json.loads(args.trial))), flush=True)
        return 0
    out_dir = os.environ.get("OUT")
    path = Path(args.out or (Path(out_dir) / "gpu_bench.json" if out_dir else "gpu_bench.json"))
    if not args.smoke and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA device here (run --smoke on a CPU)", file=sys.stderr)
        return 2
    started = time.monotonic()
    figures: dict[str, Any] = {"smoke": args.smoke, "machine": device_info(), "parts": {}}
    print(f"bench/gpu.py on {figures['machine']['device']}", flush=True)
    budgets = SMOKE_BUDGETS if args.smoke else BUDGETS
    if args.smoke:  # a shared CPU: one thread, and dynamo without inductor's C++ build
        torch.set_num_threads(1)
        torch.compile = functools.partial(torch.compile, backend="eager")
    limit = sum(budgets.values()) + 40 if args.smoke else WATCHDOG_SECONDS
    threading.Thread(target=_watchdog, args=(limit, path, figures), daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as folder:
        os.environ["ORCHESTRATE_CACHE"] = folder  # nothing left behind
        big = write_corpus(Path(folder), 10_000, 2_000_000 if args.smoke else 20_000_000)
        small = write_corpus(Path(folder), 1024, 200_000 if args.smoke else 5_000_000)
        parts = {
            "train_vs_bare": lambda clock: compare(args.smoke, big, False, clock),
            "compile": lambda clock: compare(args.smoke, big, True, clock),
            "packing": lambda clock: packing(args.smoke, small, clock),
        }
        for name, part in parts.items():
            if args.only and name not in args.only:
                continue
            print(f"{name} (budget {budgets[name]:.0f} s):", flush=True)
            part_started = time.monotonic()
            try:
                figures["parts"][name] = part(Clock(budgets[name]))
            except OutOfTime:
                figures["parts"][name] = {"error": "out of time"}
                print("  out of time", flush=True)
            except Exception as error:  # one part's failure must not cost the others
                figures["parts"][name] = {"error": f"{type(error).__name__}: {error}"}
                print(f"  failed: {type(error).__name__}: {error}", flush=True)
                traceback.print_exc()
            figures["parts"][name]["seconds"] = round(time.monotonic() - part_started, 1)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(figures, indent=2, default=str))  # after each part
    figures["seconds"] = round(time.monotonic() - started, 1)
    path.write_text(json.dumps(figures, indent=2, default=str))
    print(f"{figures['seconds']:.0f} s in all; figures in {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
