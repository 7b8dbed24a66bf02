"""Fidelity: do the CS336 ablations rank on the embedded stories as the handout expects?

The handout (CS336 assignment 1, section 7.3) asks for four ablations, and the outcome it
leads one to expect is: no RMSNorm unstable at the baseline's learning rate, pre-norm ahead
of post-norm, RoPE ahead of NoPE, SwiGLU at least as good as an ungated SiLU of the same size. This trains the baseline
and the four ablations with the same seeds (`train.seed`: init and batches; one corpus) and
prints, per arm, mean final val_loss ± std over seeds, the paired Δ against the baseline,
its 95% t interval, and the change in percent; then the baseline's val_loss by step (how
close it gets to its floor). `--corpus` first measures how predictable each story style is:
an upper bound on the nats of random choices per story (and per token), distinct sentences,
validation sentences found verbatim in training, and unique word n-grams. Runs go one at a
time, in this process, on `--threads` threads; with `--json FILE`, runs already in FILE from
the same setting are reused (a CPU run is deterministic), so more seeds train only the new.
Default: about 3 minutes on one thread of a 2-core CPU.

    python bench/fidelity.py                        # tiny preset, 400 steps, 2 seeds, rich
    python bench/fidelity.py --style plain          # the default, more repetitive stories
    python bench/fidelity.py --steps 1200 --seeds 4 --json runs.json
    python bench/fidelity.py --corpus --seeds 0     # only the corpus measures
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # as bench/trainer.py

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from trainer import stories  # noqa: E402
from trainer.config import load_config  # noqa: E402
from trainer.data import END_OF_TEXT, load_dataset  # noqa: E402
from trainer.train import train  # noqa: E402

ARMS = {
    "baseline": {},
    "no_rmsnorm": {"model.norm": "none"},
    "post_norm": {"model.norm_position": "post"},
    "nope": {"model.positions": "nope"},
    "silu_ffn": {"model.ffn": "silu"},
}
HANDOUT = {  # the direction CS336 expects for each ablation
    "no_rmsnorm": "worse / unstable at the baseline lr",
    "post_norm": "worse",
    "nope": "worse",
    "silu_ffn": "worse or equal",
}


class _Tracked(float):
    """A draw of random() that charges -log P(branch) for each `draw < p` it is put to."""

    def __lt__(self, p: float) -> bool:
        value, (lo, hi) = float(self), self.interval
        if p <= lo or p >= hi:
            return p >= hi
        inside = value < p
        self.rng.nats -= math.log(((p - lo) if inside else (hi - p)) / (hi - lo))
        self.interval = (lo, p) if inside else (p, hi)
        return inside


class CountingRandom(random.Random):
    """random.Random that adds up the nats of the choices made through it (an upper bound on
    the text's entropy: a choice drawn but not used, or two choices giving one text, count)."""

    nats = 0.0

    def choice(self, seq):
        self.nats += math.log(len(seq))
        return super().choice(seq)

    def sample(self, population, k, **kwargs):
        self.nats += math.lgamma(len(population) + 1) - math.lgamma(len(population) - k + 1)
        return super().sample(population, k, **kwargs)

    def random(self):
        draw = _Tracked(super().random())
        draw.interval, draw.rng = (0.0, 1.0), self
        return draw


def _sentences(story: str) -> list[str]:
    return re.split(r'(?<=[.!?"]) (?=[A-Z"])', story)


def corpus_report(style: str, preset: str, num: int = 5000) -> dict:
    """How predictable `style` is: choice nats per story and token, repetition."""
    rng = CountingRandom(0)
    tell = stories.STYLES[style]
    docs = [tell(rng) for _ in range(num)]
    config = load_config(preset, {"data.story_style": style})
    data = load_dataset(config.data, config.model.vocab_size)
    end = data.tokenizer.token_to_id(END_OF_TEXT)
    tokens_per_story = len(data.train) / int((np.asarray(data.train) == end).sum())
    sentences = [s for d in docs for s in _sentences(d)]
    corpus = stories.generate_stories(config.data.num_stories, config.data.seed, style)
    num_val = max(1, round(len(corpus) * config.data.val_fraction))  # as trainer.data splits
    seen = {s for d in corpus[:-num_val] for s in _sentences(d)}
    val = [s for d in corpus[-num_val:] for s in _sentences(d)]
    words = [d.split() for d in docs]
    report = {
        "style": style,
        "nats_per_story": rng.nats / num,
        "tokens_per_story": tokens_per_story,
        "nats_per_token": rng.nats / num / tokens_per_story,
        "distinct_sentences": len(set(sentences)) / len(sentences),
        "val_sentences_in_train": sum(s in seen for s in val) / len(val),
        "word_types": len({w for ws in words for w in ws}),
    }
    for n in (4, 8, 16):
        grams = [tuple(ws[i : i + n]) for ws in words for i in range(len(ws) - n + 1)]
        report[f"unique_{n}grams"] = len(set(grams)) / len(grams)
    return report


def run_arm(arm: str, seed: int, args) -> dict:
    overrides = {**ARMS[arm], "train.seed": seed, "train.max_steps": args.steps}
    overrides |= {"data.story_style": args.style, "train.sample_tokens": 0}
    overrides |= {"train.eval_every": max(1, args.steps // 8), "train.log_every": 50}
    if args.cache_dir:
        overrides["data.cache_dir"] = args.cache_dir
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = value
    curve: dict[int, float] = {}

    def report(metrics: dict) -> None:
        if "val_loss" in metrics:
            curve[metrics["step"]] = metrics["val_loss"]

    started = time.perf_counter()
    result = train(load_config(args.preset, overrides), report)
    return {
        "arm": arm,
        "seed": seed,
        "outcome": result["outcome"],
        "val_loss": result["val_loss"],
        "num_params": result["num_params"],
        "wall_s": time.perf_counter() - started,
        "curve": curve,
    }


def summarise(runs: list[dict]) -> list[dict]:
    """Per arm: mean ± std over seeds, and the paired (same seed) Δ against the baseline."""
    by_arm: dict[str, dict[int, float]] = {}
    for run in runs:
        by_arm.setdefault(run["arm"], {})[run["seed"]] = run["val_loss"]
    base = by_arm["baseline"]
    rows = []
    for arm, losses in by_arm.items():
        values = list(losses.values())
        finite = [v for v in values if math.isfinite(v)]
        row = {"arm": arm, "n": len(values), "diverged": len(values) - len(finite)}
        row["mean"] = statistics.mean(finite) if finite else math.nan
        row["std"] = statistics.stdev(finite) if len(finite) > 1 else math.nan
        diffs = [losses[s] - base[s] for s in losses if s in base]
        if arm != "baseline" and diffs and all(map(math.isfinite, diffs)):
            delta = statistics.mean(diffs)
            half = math.nan
            if len(diffs) > 1:
                sem = statistics.stdev(diffs) / math.sqrt(len(diffs))
                half = stats.t.ppf(0.975, len(diffs) - 1) * sem
            row |= {"delta": delta, "ci": (delta - half, delta + half)}
            row["pct"] = 100 * delta / statistics.mean(base.values())
        rows.append(row)
    return rows


def _table(rows: list[dict]) -> str:
    lines = [
        f"{'arm':<11} {'seeds':>5} {'val_loss':>17} {'delta':>9} {'95% CI':>20} "
        f"{'change':>7}  handout"
    ]
    for r in rows:
        mean = f"{r['mean']:.4f} ± {r['std']:.4f}" if r["n"] > 1 else f"{r['mean']:.4f}"
        if r["diverged"]:
            mean += f" ({r['diverged']} div.)"
        delta = ci = pct = "-"
        if "delta" in r:
            delta, pct = f"{r['delta']:+.4f}", f"{r['pct']:+.1f}%"
            ci = "-" if math.isnan(r["ci"][0]) else f"[{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}]"
        lines.append(
            f"{r['arm']:<11} {r['n']:>5} {mean:>17} {delta:>9} {ci:>20} {pct:>7}  "
            f"{HANDOUT.get(r['arm'], '')}"
        )
    return "\n".join(lines)


_SAME_RUN = ("preset", "steps", "style", "set")


def _earlier_runs(args) -> dict[tuple[str, int], dict]:
    """Runs already in `--json` from the same setting: a run is deterministic on the CPU, so
    asking for more seeds later trains only the new ones."""
    path = Path(args.json) if args.json else None
    if not path or not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    if any(earlier["args"].get(k) != getattr(args, k) for k in _SAME_RUN):
        return {}
    for run in earlier["runs"]:
        run["curve"] = {int(step): loss for step, loss in run["curve"].items()}
    return {(r["arm"], r["seed"]): r for r in earlier["runs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--style", default="rich", choices=sorted(stories.STYLES))
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE, for every arm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", default="")
    parser.add_argument("--corpus", action="store_true", help="measure both story styles first")
    parser.add_argument(
        "--json", default="", help="write every run and the summary here (and reuse its runs)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.corpus:
        for style in sorted(stories.STYLES):
            r = corpus_report(style, args.preset)
            print(
                f"{style:<6} choices <= {r['nats_per_story']:.1f} nats/story, "
                f"{r['tokens_per_story']:.0f} tokens/story ({args.preset} tokenizer): "
                f"<= {r['nats_per_token']:.3f} nats/token; distinct sentences "
                f"{r['distinct_sentences']:.1%}, validation sentences also in training "
                f"{r['val_sentences_in_train']:.1%}; unique 4/8/16-grams {r['unique_4grams']:.1%} / "
                f"{r['unique_8grams']:.1%} / {r['unique_16grams']:.1%}; "
                f"{r['word_types']} word types"
            )
    if args.seeds == 0:  # only the corpus
        return
    arms = ["baseline", *(a for a in args.arms.split(",") if a != "baseline")]
    done = _earlier_runs(args)
    runs = []
    started = time.perf_counter()
    for seed in range(args.seeds):  # seed-major, as the orchestrator dispatches
        for arm in arms:
            run = done.get((arm, seed)) or run_arm(arm, seed, args)
            runs.append(run)
            print(
                f"  {arm:<11} seed {seed}: val_loss {run['val_loss']:.4f} ({run['outcome']}, "
                f"{run['num_params']:,} params, {run['wall_s']:.0f} s"
                f"{', from ' + args.json if (arm, seed) in done else ''})",
                flush=True,
            )
    rows = summarise(runs)
    print(
        f"\n{args.preset}, {args.steps} steps, {args.style} stories, {args.seeds} seeds, "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(_table(rows))
    curves = [r["curve"] for r in runs if r["arm"] == "baseline"]
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    points = ", ".join(f"{s}: {statistics.mean(c[s] for c in curves):.3f}" for s in steps)
    print(f"baseline val_loss by step (mean over seeds): {points}")
    if args.json:
        payload = {"args": vars(args), "runs": runs, "summary": rows}
        Path(args.json).write_text(json.dumps(payload, indent=1, default=str))


if __name__ == "__main__":
    main()
