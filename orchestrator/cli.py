"""The `orchestrate` command: parse the arguments, call the module that does the work, print.

`orchestrate SPEC.yaml [key=value ...]` is short for `orchestrate run SPEC.yaml ...`.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator.errors import UserError

COMMANDS = ("run", "plan", "resume", "status", "ls", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrate",
        description="Sweep and ablation orchestrator: Ray tasks, wandb runs, an Optuna store.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="print the trials a spec expands to, run nothing")
    plan.add_argument("spec", help="sweep spec YAML")
    plan.add_argument("overrides", nargs="*", help="key=value overrides of the spec")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(func=cmd_plan)

    return parser


def cmd_plan(args: argparse.Namespace) -> int:
    """Print the trials a spec expands to (for bayes, its search space); run nothing."""
    import json

    from rich.console import Console
    from rich.table import Table

    from orchestrator.space import expand, plan_summary
    from orchestrator.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    trials = expand(spec)
    plan = plan_summary(spec, trials)
    if args.json:
        print(json.dumps(plan, indent=2, default=str))
        return 0
    console = Console()
    fixed = []
    if spec.method == "bayes":
        table = Table("parameter", "search space", title=f"{spec.name}: search space")
        for name, described in plan["search_space"].items():
            table.add_row(name, described)
    else:
        varying = [k for k in trials[0].params if len({repr(t.params[k]) for t in trials}) > 1]
        fixed = [f"{k}={_cell(v)}" for k, v in trials[0].params.items() if k not in varying]
        table = Table("#", *varying, title=spec.name)
        if spec.method == "ablation":
            table.add_column("changes")
        for trial in trials:
            cells = [str(trial.index), *(_cell(trial.params[k]) for k in varying)]
            if spec.method == "ablation":
                changes = spec.ablations.get(trial.ablation, {})
                cells.append(", ".join(f"{k}={_cell(v)}" for k, v in changes.items()) or "-")
            table.add_row(*cells)
    console.print(table)
    if spec.method != "bayes" and fixed:
        console.print("fixed: " + ", ".join(fixed), markup=False, highlight=False, soft_wrap=True)
    console.print(plan["summary"], markup=False, highlight=False, soft_wrap=True)
    return 0


def _cell(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        for line in error.lines:
            print(line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def entry_point() -> None:
    """Console-script entry: exit with main()'s code."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
