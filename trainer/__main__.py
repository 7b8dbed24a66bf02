"""`python -m trainer --preset tiny --optimizer.lr=3e-4`: one training run, progress on screen.

Overrides come in the forms a W&B agent passes them: `--optimizer.lr=3e-4`, `optimizer.lr=3e-4`,
`--optimizer.lr 3e-4`, or a JSON file of keys. `--checkpoint-dir DIR` (default
$ORCHESTRATE_CHECKPOINT_DIR) saves (and resumes) there; Ctrl-C or SIGTERM saves a checkpoint
and stops. A config error is one line on stderr, exit code 2.

As the `program` of a W&B sweep: launched by `wandb agent` (which writes the run's params to
the file named by WANDB_SWEEP_PARAM_PATH), it opens the agent's run with `wandb.init()`, takes
its params from `wandb.config` (nested parameters included, which `${args}` can only pass as
Python reprs), logs every report to the run, and puts the final metrics in its summary. A run
stopped by SIGTERM, as the agent stops an early-terminated run, exits 0 after its checkpoint.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from trainer.config import (
    PRESETS,
    ConfigError,
    config_keys,
    config_to_dict,
    flatten_overrides,
    load_config,
    parse_override_args,
)
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
    run = None
    try:
        preset, checkpoint_dir, rest = _split_args(args)
        overrides = parse_override_args(rest)
        if os.environ.get("WANDB_SWEEP_PARAM_PATH"):  # launched by a W&B agent
            run = _agent_run()
            overrides = _with_sweep_values(overrides, _sweep_values(run))
        config = load_config(preset, overrides)
        if run is not None:  # the resolved config, beside the sweep's own (locked) keys
            resolved = config_to_dict(config).items()
            run.config.update({k: v for k, v in resolved if k not in run.config})
        # train() itself may still find a bad value (a missing data.source file, say).
        return _run(config, checkpoint_dir or os.environ.get("ORCHESTRATE_CHECKPOINT_DIR"), run)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        if run is not None:
            run.finish(exit_code=2)
        return 2


def _agent_run() -> Any:
    """The run the agent launched us for: wandb.init() reads its id, dir and params from the
    environment and the param file."""
    import wandb

    return wandb.init()


def _sweep_values(run: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(run.config).items() if not k.startswith("_")}


def _with_sweep_values(overrides: dict[str, Any], sweep: dict[str, Any]) -> dict[str, Any]:
    """Command-line overrides, with wandb.config's values in place of the agent's arguments
    for the same keys (a nested parameter's `--optimizer={'lr': 0.1}` is not a config key)."""
    kept = {
        key: value
        for key, value in overrides.items()
        if key not in sweep and key.split(".", 1)[0] not in sweep
    }
    return kept | flatten_overrides(sweep)


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


def _run(config, checkpoint_dir: str | None, run: Any = None) -> int:
    console = Console(highlight=False, soft_wrap=True)
    interrupted = None  # the signal that asked us to stop

    def on_interrupt(signum, frame) -> None:
        nonlocal interrupted
        interrupted = signum
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
        if run is not None:
            run.log(metrics)
        return interrupted is not None

    m = config.model
    console.print(
        f"[bold]training[/bold] {m.num_layers} layers, d_model {m.d_model}, "
        f"{config.train.max_steps} steps of {config.train.batch_size} x {m.context_length} tokens"
    )
    previous = {sig: signal.signal(sig, on_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = train(config, report=report, checkpoint_dir=checkpoint_dir)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    table = Table(title=f"outcome: {result['outcome']}", show_header=False)
    for key, value in result.items():
        if key not in ("config", "sample", "outcome"):
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    if result["sample"]:
        console.print("sample:", style="bold")
        console.print(result["sample"], markup=False)
    code = {"completed": 0, "stopped": 130, "diverged": 1}[result["outcome"]]
    if interrupted == signal.SIGTERM:
        code = 0  # as an agent's early-terminated run: a W&B agent counts codes > 0 as failures
    if run is not None:
        finals = {k: v for k, v in result.items() if isinstance(v, int | float | str)}
        run.summary.update({k: v for k, v in finals.items() if k != "sample"})
        run.finish(exit_code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())
