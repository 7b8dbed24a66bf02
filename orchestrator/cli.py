"""The `orchestrate` command: parse the arguments, call the module that does the work, print.

`orchestrate SPEC.yaml [key=value ...]` is short for `orchestrate run SPEC.yaml ...`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings

from orchestrator.arguments import amount, command_first, count, port
from orchestrator.errors import UserError, format_warning

MAX_ERROR_LINES = 50  # a spec with 10,000 mistakes shows the first ones, and how many more
COMMANDS = ("run", "plan", "resume", "status", "ls", "report", "submit", "logs", "cancel", "pull")
COMMANDS += ("agent", "export-wandb", "dashboard")


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
    status.add_argument(
        "run_dir", nargs="?", help="runs/<sweep> (with --address: its name); default: every sweep"
    )
    status.add_argument("--runs", default="runs", help="where sweeps live (default: runs)")
    status.add_argument("--json", action="store_true", help="print JSON")
    add_service_address(status, "read the sweep (a name) on this cluster")
    status.set_defaults(func=cmd_status)

    ls = sub.add_parser("ls", help="list sweeps, one line each")
    ls.add_argument("--runs", default="runs", help="where sweeps live (default: runs)")
    add_service_address(ls, "list the sweeps submitted to this cluster")
    ls.set_defaults(func=cmd_ls)

    status.add_argument("--trial", type=int, help="one trial in full: its record and traceback")
    add_service_commands(sub)
    add_interop_commands(sub)

    report = sub.add_parser("report", help="plots, report.md and the summary wandb run of a sweep")
    report.add_argument("run_dir", help="the sweep's directory, runs/<sweep>")
    add_service_address(report, "pull the sweep (a name) from this cluster into RUNS first")
    report.add_argument("--runs", default="runs", help="with --address: pull into RUNS/<sweep>")
    report.set_defaults(func=cmd_report)

    parser.commands = sub.choices  # for main(): each command's own parser
    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="join this Ray cluster (default: $RAY_ADDRESS or local)")
    parser.add_argument("--runs", default="runs", help="where sweeps live (default: runs)")
    parser.add_argument("--num-cpus", type=amount, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--num-gpus", type=amount, help="GPUs of the local Ray (default: found)")


def cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    return _run(spec, args, args.overrides)


def cmd_resume(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orchestrator import store
    from orchestrator.spec import load_spec

    info = store.read_sweep_file(Path(args.run_dir))
    spec = load_spec(info.spec_copy, info.spec_overrides)
    args.runs = str(Path(info.run_dir).parent)
    return _run(spec, args, info.overrides)


def _run(spec, args: argparse.Namespace, overrides: list[str]) -> int:
    from orchestrator.run.controller import Controller
    from orchestrator.run.display import make_display

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
    from orchestrator.results import report, summary  # after: the first trial does not wait

    sweep = summary.summarize(outcome.run_dir)
    if outcome.interrupted:
        print(f"interrupted: continue with `orchestrate resume {outcome.run_dir}`")
        return 128 + (outcome.stop_signal or signal.SIGINT)  # 130 for Ctrl-C, 143 for SIGTERM
    unwritten = report.try_write_report(outcome.run_dir, sweep)
    if unwritten:  # the sweep's exit code stands: its trials are recorded (see the README)
        print(unwritten, file=sys.stderr)
    if outcome.halted:
        print(f"halted: the rest are queued; after the fix, `orchestrate resume {outcome.run_dir}`")
    return exit_code(sweep)


def exit_code(sweep) -> int:
    """0 when a trial completed (or the sweep had none to run), else 1 (see the README)."""
    return 0 if sweep.best is not None or not sweep.trials else 1


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orchestrator.results import report, summary

    run_dir = Path(args.run_dir)
    if args.address:
        from orchestrator.service import client as service

        run_dir = service.pull(args.address, args.run_dir, Path(args.runs))
    sweep = summary.summarize(run_dir)
    unwritten = report.try_write_report(run_dir, sweep)
    if unwritten:
        print(unwritten, file=sys.stderr)
        return 1
    return exit_code(sweep)


def cmd_status(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from orchestrator import store
    from orchestrator.format import output_console
    from orchestrator.results import summary

    if args.address:
        from orchestrator.service import client as service

        overviews = service.overviews(args.address, [args.run_dir] if args.run_dir else None)
    else:
        dirs = [Path(args.run_dir)] if args.run_dir else store.sweep_dirs(Path(args.runs))
        overviews = [summary.overview(d) for d in dirs]
    if args.trial is not None:
        if len(overviews) != 1 or "records" not in overviews[0]:
            raise UserError("status --trial: name one sweep (runs/<sweep>)")
        print(summary.trial_detail(overviews[0], args.trial))
        return 0
    if args.json:
        print(json.dumps(overviews, indent=2, default=str))
        return 0
    console = output_console()
    for item in overviews:
        console.print(_overview_line(item), markup=False, highlight=False, soft_wrap=True)
        if "records" in item:
            console.print(summary.overview_table(item))
    if not overviews:
        where = f"on {args.address}" if args.address else f"under {args.runs}/"
        console.print(f"no sweeps {where}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orchestrator import store
    from orchestrator.results import summary

    if args.address:
        from orchestrator.service import client as service

        overviews = service.overviews(args.address)
        for item in overviews:
            print(_overview_line(item))
        if not overviews:
            print(f"no sweeps on {args.address}")
        return 0
    dirs = store.sweep_dirs(Path(args.runs))
    for run_dir in dirs:
        print(_overview_line(summary.overview(run_dir)))
    if not dirs:
        print(f"no sweeps under {args.runs}/")
    return 0


def _overview_line(item: dict) -> str:
    """A sweep's one-line overview; for a submitted sweep, with its Ray Job."""
    from orchestrator.results import summary

    line = item.get("missing") or summary.overview_line(item)
    job = item.get("job")
    return f"{line}  job {job['id']} {job['status']}" if job else line


def cmd_plan(args: argparse.Namespace) -> int:
    """Print the trials a spec expands to (for bayes, its search space); run nothing."""
    import json

    from rich.table import Table

    from orchestrator.format import output_console
    from orchestrator.plan.expand import expand, plan_summary
    from orchestrator.spec import load_spec
    from orchestrator.tracking.redact import sanitize

    spec = load_spec(args.spec, args.overrides)
    trials = expand(spec)
    plan = sanitize(plan_summary(spec, trials))  # secret-named parameters: <redacted>
    if args.json:
        print(json.dumps(plan, indent=2, default=str))
        return 0
    console = output_console()
    fixed = []
    if spec.method == "bayes":
        table = Table("parameter", "search space", title=f"{spec.name}: search space")
        for name, described in plan["search_space"].items():
            table.add_row(name, described)
    else:
        shown = [sanitize(t.params) for t in trials]
        varying = [k for k in shown[0] if len({repr(params[k]) for params in shown}) > 1]
        fixed = [f"{k}={_cell(v)}" for k, v in shown[0].items() if k not in varying]
        table = Table("#", *varying, title=spec.name)
        if spec.method == "ablation":
            table.add_column("changes")
        for trial, params in zip(trials, shown, strict=True):
            cells = [str(trial.index), *(_cell(params[k]) for k in varying)]
            if spec.method == "ablation":
                changes = sanitize(spec.ablations.get(trial.ablation, {}))
                cells.append(", ".join(f"{k}={_cell(v)}" for k, v in changes.items()) or "-")
            table.add_row(*cells)
    console.print(table)
    if spec.method != "bayes" and fixed:
        console.print("fixed: " + ", ".join(fixed), markup=False, highlight=False, soft_wrap=True)
    console.print(plan["summary"], markup=False, highlight=False, soft_wrap=True)
    return 0


def _cell(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_service_address(parser: argparse.ArgumentParser, what: str) -> None:
    import os

    parser.add_argument(
        "--address",
        default=os.environ.get("ORCHESTRATE_ADDRESS"),
        help=f"Ray dashboard http://HEAD:8265: {what} (default: $ORCHESTRATE_ADDRESS)",
    )


def add_service_commands(sub: argparse._SubParsersAction) -> None:
    """`submit`, `logs`, `cancel`, `pull`: sweeps that run on a Ray cluster (orchestrator.service)."""
    from orchestrator.service.client import DEFAULT_CLUSTER_RUNS

    submit = sub.add_parser("submit", help="run a sweep on a Ray cluster; return at once")
    submit.add_argument("spec", help="sweep spec YAML (its directory is uploaded with it)")
    submit.add_argument("overrides", nargs="*", help="key=value overrides of the spec")
    add_service_address(submit, "the cluster to run on")
    submit.add_argument(
        "--runs",
        default=DEFAULT_CLUSTER_RUNS,
        help=f"absolute runs root on the head node (default: {DEFAULT_CLUSTER_RUNS})",
    )
    submit.set_defaults(func=cmd_submit)

    logs = sub.add_parser("logs", help="the controller's log of a submitted sweep")
    logs.add_argument("sweep", help="the sweep's name, as `submit` printed it")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until the sweep ends")
    add_service_address(logs, "the cluster the sweep runs on")
    logs.set_defaults(func=cmd_logs)

    cancel = sub.add_parser("cancel", help="stop a submitted sweep (trials checkpoint first)")
    cancel.add_argument("sweep", help="the sweep's name")
    add_service_address(cancel, "the cluster the sweep runs on")
    cancel.set_defaults(func=cmd_cancel)

    pull = sub.add_parser("pull", help="copy a submitted sweep's directory here")
    pull.add_argument("sweep", help="the sweep's name")
    add_service_address(pull, "the cluster the sweep ran on")
    pull.add_argument("--runs", default="runs", help="copy into RUNS/<sweep> (default: runs)")
    pull.add_argument("--checkpoints", action="store_true", help="copy checkpoints too")
    pull.set_defaults(func=cmd_pull)


def _address(args: argparse.Namespace) -> str:
    if not args.address:
        raise UserError(f"{args.command}: give the cluster with --address http://HEAD:8265")
    return args.address


def cmd_submit(args: argparse.Namespace) -> int:
    from orchestrator.service import client as service

    address = _address(args)
    submitted = service.submit(address, args.spec, args.overrides, args.runs)
    print(submitted.name)
    started = "it runs" if submitted.started else "still starting; it will run"
    print(
        f"submitted sweep {submitted.name} as job {submitted.job_id}; {started} under "
        f"{submitted.runs_root}/{submitted.name} on the head node\n"
        f"  orchestrate status {submitted.name} --address {address}\n"
        f"  orchestrate logs {submitted.name} --follow --address {address}",
        file=sys.stderr,
    )
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from orchestrator.service import client as service

    service.logs(_address(args), args.sweep, args.follow)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from orchestrator.service import client as service

    status = service.cancel(_address(args), args.sweep)
    print(f"sweep {args.sweep}: job {status}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orchestrator.service import client as service

    run_dir = service.pull(_address(args), args.sweep, Path(args.runs), args.checkpoints)
    print(f"pulled sweep {args.sweep} into {run_dir}")
    return 0


def add_interop_commands(sub: argparse._SubParsersAction) -> None:
    """W&B agents on Ray, export to a W&B sweep config, optuna-dashboard."""
    agent = sub.add_parser("agent", help="run W&B sweep agents as Ray tasks")
    agent.add_argument("sweep", help="ENTITY/PROJECT/SWEEP_ID, as `wandb sweep` prints it")
    agent.add_argument("--workers", type=count, default=1, help="how many agents (default 1)")
    agent.add_argument("--count", type=count, help="runs per agent (default: until the sweep ends)")
    agent.add_argument("--cpus", type=amount, default=1, help="CPUs per agent (default 1)")
    agent.add_argument("--gpus", type=amount, help="GPUs per agent (default 1 if there are any)")
    agent.add_argument(
        "--trainer", metavar="BASE", help="run the shared trainer with this preset or config"
    )
    agent.add_argument("--address", help="join this Ray cluster (default: $RAY_ADDRESS or local)")
    agent.add_argument(
        "--runs", default="runs", help="runs go under RUNS/agent-<id> (default: runs)"
    )
    agent.set_defaults(func=cmd_agent)

    export = sub.add_parser("export-wandb", help="print a spec as a W&B sweep config")
    export.add_argument("spec", help="sweep spec YAML")
    export.set_defaults(func=cmd_export_wandb)

    dashboard = sub.add_parser("dashboard", help="optuna-dashboard on a sweep's store")
    dashboard.add_argument("run_dir", help="the sweep's directory, runs/<sweep>")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to serve on")
    dashboard.add_argument("--port", type=port, default=8080, help="port (default 8080)")
    dashboard.set_defaults(func=cmd_dashboard)


def cmd_agent(args: argparse.Namespace) -> int:
    from orchestrator.interop.agent import run_agents

    return run_agents(
        args.sweep,
        workers=args.workers,
        count=args.count,
        cpus=args.cpus,
        gpus=args.gpus,
        trainer_base=args.trainer,
        runs_root=args.runs,
        address=args.address,
    )


def cmd_export_wandb(args: argparse.Namespace) -> int:
    from orchestrator.interop.export import export_file

    text, warnings = export_file(args.spec)
    for line in warnings:
        print(line, file=sys.stderr)
    print(text, end="")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from orchestrator.interop.dashboard import serve

    return serve(args.run_dir, host=args.host, port=args.port)


def main(argv: list[str] | None = None) -> int:
    argv = command_first(list(sys.argv[1:] if argv is None else argv), COMMANDS)
    parser = build_parser()
    command = parser.commands.get(argv[0]) if argv else None
    if command is not None:
        # Options and key=value overrides in any order (`SPEC --address X k=v`).
        args = command.parse_intermixed_args(argv[1:])
        args.command = argv[0]
    else:
        args = parser.parse_args(argv)
    # Our own table and lines say where runs are; wandb's banners per run would drown them.
    os.environ.setdefault("WANDB_SILENT", "true")
    warnings.formatwarning = format_warning  # our notices as one line each
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        for line in error.lines[:MAX_ERROR_LINES]:
            print(line, file=sys.stderr)
        if len(error.lines) > MAX_ERROR_LINES:
            print(f"... and {len(error.lines) - MAX_ERROR_LINES} more", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def entry_point() -> None:
    """Console-script entry: exit with main()'s code."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
