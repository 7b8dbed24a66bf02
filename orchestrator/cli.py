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
    raise UserError("orchestrate plan: not implemented yet")


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
