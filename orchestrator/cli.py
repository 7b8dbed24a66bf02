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

    run = sub.add_parser("run", help="run a sweep (also: orchestrate SPEC.yaml)")
    run.add_argument("spec", help="sweep spec YAML")
    run.add_argument("overrides", nargs="*", help="key=value overrides of the spec")
    add_run_options(run)
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue a sweep from its directory")
    resume.add_argument("run_dir", help="the sweep's directory, runs/<sweep>")
    add_run_options(resume)
    resume.set_defaults(func=cmd_resume)

    status = sub.add_parser("status", help="where a sweep (or every sweep) stands")
    status.add_argument("run_dir", nargs="?", help="runs/<sweep>; default: every sweep")
    status.add_argument("--runs", default="runs", help="where sweeps live (default: runs)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)

    ls = sub.add_parser("ls", help="list sweeps, one line each")
    ls.add_argument("--runs", default="runs", help="where sweeps live (default: runs)")
    ls.set_defaults(func=cmd_ls)

    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="join this Ray cluster (default: $RAY_ADDRESS or local)")
    parser.add_argument("--runs", default="runs", help="where sweeps live (default: runs)")
    parser.add_argument("--num-cpus", type=float, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--num-gpus", type=float, help="GPUs of the local Ray (default: found)")


def cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    return _run(spec, args, args.overrides)


def cmd_resume(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orchestrator import store
    from orchestrator.spec import load_spec

    info = store.read_sweep_file(Path(args.run_dir))
    overrides = [*info.get("overrides", []), f"name={info['name']}"]
    spec = load_spec(info["spec_copy"], overrides)
    args.runs = str(Path(info["run_dir"]).parent)
    return _run(spec, args, info.get("overrides", []))


def _run(spec, args: argparse.Namespace, overrides: list[str]) -> int:
    from orchestrator import summary
    from orchestrator.controller import Controller
    from orchestrator.display import make_display

    controller = Controller(
        spec,
        runs_root=args.runs,
        address=args.address,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        display=make_display(),
        overrides=overrides,
    )
    outcome = controller.run()
    summary.summarize(outcome.run_dir)
    if outcome.interrupted:
        print(f"interrupted: continue with `orchestrate resume {outcome.run_dir}`")
        return 130
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rich.console import Console

    from orchestrator import summary

    dirs = [Path(args.run_dir)] if args.run_dir else summary.sweep_dirs(Path(args.runs))
    overviews = [summary.overview(d) for d in dirs]
    if args.json:
        print(json.dumps(overviews, indent=2, default=str))
        return 0
    console = Console()
    for item in overviews:
        console.print(summary.overview_line(item))
        console.print(summary.results_table({"name": item["name"], **item}, item["records"]))
    if not overviews:
        console.print(f"no sweeps under {args.runs}/")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orchestrator import summary

    dirs = summary.sweep_dirs(Path(args.runs))
    for run_dir in dirs:
        print(summary.overview_line(summary.overview(run_dir)))
    if not dirs:
        print(f"no sweeps under {args.runs}/")
    return 0


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
