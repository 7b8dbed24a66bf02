"""`python -m trainer --preset tiny --optimizer.lr=3e-4`: one training run, progress on screen.

Overrides come in the forms a W&B agent passes them: `--optimizer.lr=3e-4`, `optimizer.lr=3e-4`,
`--optimizer.lr 3e-4`, or a JSON file of keys. `--checkpoint-dir DIR` saves (and resumes)
there; Ctrl-C saves a checkpoint and stops. A config error is one line on stderr, exit code 2.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from trainer.config import PRESETS, ConfigError, config_keys, load_config
from trainer.train import train

USAGE = f"""usage: python -m trainer [--preset NAME|FILE.yaml] [--checkpoint-dir DIR] [OVERRIDES...]

presets: {", ".join(PRESETS)} (default tiny)
overrides: --section.key=value | section.key=value | --section.key value | FILE.json
keys: {", ".join(config_keys())}"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(args):
        print(USAGE)
        return 0
    try:
        preset, checkpoint_dir, overrides = _split_args(args)
        config = load_config(preset, overrides)
        return _run(config, checkpoint_dir)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _split_args(args: list[str]) -> tuple[str, str | None, list[str]]:
    """Pull out --preset and --checkpoint-dir; the rest are config overrides."""
    options: dict[str, Any] = {"--preset": "tiny", "--checkpoint-dir": None}
    rest: list[str] = []
    while args:
        arg = args.pop(0)
        name, has_value, value = arg.partition("=")
        if name not in options:
            rest.append(arg)
        elif has_value:
            options[name] = value
        elif args:
            options[name] = args.pop(0)
        else:
            raise ConfigError(f"{name}: missing value")
    return options["--preset"], options["--checkpoint-dir"], rest


def _run(config, checkpoint_dir: str | None) -> int:
    console = Console(highlight=False, soft_wrap=True)
    interrupted = False

    def on_interrupt(signum, frame) -> None:
        nonlocal interrupted
        interrupted = True
        console.print("[yellow]interrupted: stopping at the next logged step[/yellow]")

    def report(metrics: dict[str, Any]) -> bool:
        line = f"step {metrics['step']:>6}"
        if "train_loss" in metrics:
            line += f"  loss {metrics['train_loss']:.4f}  lr {metrics['lr']:.2e}"
            line += f"  grad {metrics['grad_norm']:.2f}  {metrics['tokens_per_s']:,.0f} tok/s"
        if "val_loss" in metrics:
            line += f"  [bold]val {metrics['val_loss']:.4f}[/bold]"
            line += f"  acc {metrics['val_accuracy']:.3f}"
        console.print(line)
        return interrupted

    m = config.model
    console.print(
        f"[bold]training[/bold] {m.num_layers} layers, d_model {m.d_model}, "
        f"{config.train.max_steps} steps of {config.train.batch_size} x {m.context_length} tokens"
    )
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = train(config, report=report, checkpoint_dir=checkpoint_dir)
    finally:
        signal.signal(signal.SIGINT, previous)

    table = Table(title=f"outcome: {result['outcome']}", show_header=False)
    for key, value in result.items():
        if key not in ("config", "sample", "outcome"):
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    if result["sample"]:
        console.print("sample:", style="bold")
        console.print(result["sample"], markup=False)
    return {"completed": 0, "stopped": 130, "diverged": 1}[result["outcome"]]


if __name__ == "__main__":
    sys.exit(main())
