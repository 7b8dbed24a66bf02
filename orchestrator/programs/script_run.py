"""On the worker: a script trial's subprocess, its metrics, and how it is stopped.

Each trial runs the script's command (`ScriptProgram.template`) as a subprocess inside its
Ray task, in the spec's directory, with what the W&B agent (wandb 0.31,
`wandb_agent.Agent._command_run`) gives it:
- the params as `{key: {"value": v}}` in a YAML param file named by `WANDB_SWEEP_PARAM_PATH`
  (so the script's `wandb.init()` finds them, locked, in `wandb.config`), and as JSON for
  `${args_json_file}`; the command macros are expanded by wandb's own
  `create_sweep_command_args`, so `${args}`, `${args_no_hyphens}`, ... are W&B's exactly;
- `WANDB_RUN_ID` (the trial's run id; a retry continues it with `WANDB_RESUME=allow`),
  `WANDB_DIR` (the offline run lands in `runs/<sweep>/wandb/`), and the run's project, name,
  group, tags, job type and mode as `WANDB_*` variables.
Differences from the agent: `${interpreter}` is the worker's Python (`sys.executable`, not
whatever `python` is first on PATH); `${envvar:NAME}` with NAME unset fails the trial (W&B
would put the variable's name in its place); `WANDB_SWEEP_ID` is not set, because there is no
W&B sweep: a run that names one cannot be `wandb sync`ed (the server answers "sweep not
found"). Without it wandb.init() honours its own `project=`/`id=` arguments where the agent
would override them. `ORCHESTRATE_CHECKPOINT_DIR` names the trial's directory, where a script
may checkpoint to survive a retry or an interruption.

Metrics come back without changes to the script. A script that calls `wandb.init()`: the
run's `.wandb` transaction log is followed as it grows (flushed every 0.5 s: the script gets
`WANDB__TRANSACTION_LOG_FLUSH_INTERVAL`, wandb's own setting, unless it is set already); each history row is one report, at
the row's `step` key if the script logs one, else at wandb's `_step`; the final value is the
run summary's. A script that never opens a wandb run may print a JSON object per line
(`{"step": 3, "loss": 0.25}`) or `name=value` pairs (`step=3 loss=0.25`); its final metrics
are the last value printed for each name. Once a wandb run file appears, printed lines are no
longer read as metrics.

Stopping: pruning (Ray's cancel) and a graceful stop (the STOP file, Ctrl-C at the
controller) send SIGTERM, then SIGKILL after `WANDB_AGENT_KILL_DELAY` seconds (30, as the W&B
agent). The output of the script (stdout and stderr) goes to `output.log` in the trial's
directory, secrets redacted and size capped (`programs.output`); a non-zero exit fails the
trial with the end of that log. The script's wandb does not capture it (`WANDB_CONSOLE=off`):
that copy would be neither redacted nor capped.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.programs.base import AGENT_ENV, STOP_FILE, TrialRequest
from orchestrator.programs.output import LINE_BYTES, OUTPUT_FILE, OutputLog
from orchestrator.tracking.redact import EnvvarNotSet, expand_envvars

KILL_DELAY_SECONDS = 30.0  # the W&B agent's default, also read from WANDB_AGENT_KILL_DELAY
POLL_SECONDS = 0.1
FLUSH_SECONDS = 0.5  # how often a script's wandb writes its .wandb file (x_ setting)
EXIT_RECORD_SECONDS = 15.0  # how long a finished script's wandb service may take to flush
OUTPUT_TAIL_LINES = 30
METRIC_LINE_BYTES = 4096  # a longer printed line is output only, never a metrics line
_PAIR = r"[^\s,=]+=[^\s,]+"
METRIC_PAIRS = re.compile(rf"[\s,]*{_PAIR}(?:[\s,]+{_PAIR})*[\s,]*")  # name=value, name=value ...
CHECKPOINT_DIR_VARIABLE = "ORCHESTRATE_CHECKPOINT_DIR"  # where the script checkpoints


class ScriptFailed(RuntimeError):
    """The script exited with an error; the message ends with the tail of its output."""


def expand_command(
    template: list[str],
    *,
    program: str | None,
    args: dict[str, Any],
    args_json_file: str,
    environ: dict[str, str],
) -> list[str]:
    """The command line with every macro replaced, as the W&B agent builds it."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in args.items()}})
    macros |= {
        "env": ["/usr/bin/env"],
        "interpreter": [sys.executable],
        "program": [program] if program else [],
        "args_json_file": [args_json_file],
    }
    line: list[str] = []
    for chunk in template:
        try:
            chunk, _ = expand_envvars(str(chunk), environ)
        except EnvvarNotSet as error:
            raise ScriptFailed(f"command: {error}") from None
        if chunk.startswith("${") and chunk.endswith("}"):
            line += macros[chunk[2:-1]]  # spec validation allows only known macros
        else:
            line.append(chunk)
    return line


def write_param_files(directory: Path, run_id: str, args: dict[str, Any]) -> tuple[Path, Path]:
    """The agent's two files: YAML for `WANDB_SWEEP_PARAM_PATH`, JSON for `${args_json_file}`."""
    from wandb.sdk.lib.config_util import save_config_file_from_dict

    yaml_path = directory / f"config-{run_id}.yaml"
    json_path = directory / f"config-{run_id}.json"
    save_config_file_from_dict(str(yaml_path), {k: {"value": v} for k, v in args.items()})
    json_path.write_text(json.dumps(args))
    return yaml_path, json_path


def script_env(
    request: TrialRequest, param_path: Path, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The script's environment: the worker's, less any agent leftovers, plus the run's."""
    # A wandb service token names the worker's (or its parent's) wandb-core: the script
    # starts its own, as under `wandb agent`.
    dropped = (*AGENT_ENV, "WANDB_SERVICE")
    env = {k: v for k, v in (base or os.environ).items() if k not in dropped}
    env |= request.env
    env |= {
        "WANDB_SWEEP_PARAM_PATH": str(param_path),
        # The trial's directory, or its folder on this node with a `checkpoints:` store.
        CHECKPOINT_DIR_VARIABLE: request.env.get(CHECKPOINT_DIR_VARIABLE, request.checkpoint_dir),
        "ORCHESTRATE_TRIAL": str(request.trial_number),
        "PYTHONUNBUFFERED": "1",  # printed metrics arrive as they are printed
        "WANDB_CONSOLE": "off",  # the output is kept in output.log, redacted and capped
    }
    # wandb-core flushes the run's .wandb file every 15 s by default: too late to prune.
    env.setdefault("WANDB__TRANSACTION_LOG_FLUSH_INTERVAL", str(FLUSH_SECONDS))
    options = request.wandb
    if options is not None:
        wandb_env = {
            "WANDB_RUN_ID": options.run_id,
            "WANDB_RESUME": "allow",
            "WANDB_DIR": options.dir,
            "WANDB_PROJECT": options.project_name,
            "WANDB_ENTITY": options.entity,
            "WANDB_NAME": options.experiment_name,
            "WANDB_RUN_GROUP": options.group,
            "WANDB_TAGS": ",".join(options.tags) or None,
            "WANDB_JOB_TYPE": options.job_type,
            "WANDB_MODE": options.mode,
        }
        env |= {k: str(v) for k, v in wandb_env.items() if v}
    return env


def parse_metric_line(line: str) -> dict[str, float] | None:
    """A printed metrics line: a JSON object, or only `name=number` pairs; else None."""
    text = line.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        return _numbers(parsed) if isinstance(parsed, dict) else None
    if not METRIC_PAIRS.fullmatch(text):  # one pass, so a long line of output costs little
        return None
    values: dict[str, float] = {}
    for pair in filter(None, re.split(r"[\s,]+", text)):
        name, _, value = pair.partition("=")
        try:
            values[name] = float(value)
        except ValueError:
            return None
    return values


def _numbers(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Numeric (and string) leaves of a metrics dict, nested keys joined with '.'."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _numbers(value, f"{name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = value
    return flat


class ScriptMetrics:
    """The metrics of one running script: its wandb run's records, or its printed lines."""

    def __init__(self, wandb_dir: Path | None, run_id: str | None):
        from orchestrator.tracking.wandb_records import RunRecord, find_run_files

        self.wandb_dir, self.run_id = wandb_dir, run_id
        self.known = set(find_run_files(wandb_dir, run_id)) if wandb_dir and run_id else set()
        self.followers: dict[Path, Any] = {}
        self.run = RunRecord(run_id or "")
        self.printed: dict[str, Any] = {}  # last printed value of each name
        self.exited = False  # an exit record was read

    def poll(self) -> list[dict[str, Any]]:
        """New reports from the run's `.wandb` files (including any that appeared since)."""
        from orchestrator.tracking.wandb_records import RecordFollower, _apply, find_run_files

        if not self.wandb_dir or not self.run_id:
            return []
        for path in find_run_files(self.wandb_dir, self.run_id):
            if path not in self.known and path not in self.followers:
                self.followers[path] = RecordFollower(path)
        for follower in self.followers.values():
            for record in follower.poll():
                _apply(self.run, record)  # history rows, summary updates, the exit
                self.exited |= record.WhichOneof("record_type") == "exit"
        reports = []
        for row in self.run.history:
            values = _numbers(row)
            step = values.get("step", values.get("_step"))
            reports.append({k: v for k, v in values.items() if k[0] != "_"} | {"step": step})
        self.run.history.clear()  # reported; only the summary is kept
        return reports

    def uses_wandb(self) -> bool:
        return bool(self.followers)

    def printed_report(self, line: str) -> dict[str, Any] | None:
        """A printed line as a report, unless the script logs through wandb."""
        if self.uses_wandb():
            return None
        values = parse_metric_line(line)
        if values:
            self.printed |= values
        return values

    def final(self) -> dict[str, Any]:
        """The script's final metrics: its run summary, else the last printed values."""
        if self.uses_wandb():
            summary = _numbers(self.run.summary)
            return {k: v for k, v in summary.items() if k[0] != "_" and _finite(v)}
        return {k: v for k, v in self.printed.items() if _finite(v)}


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def run_script(
    request: TrialRequest, template: list[str], program: str | None
) -> Iterator[dict[str, Any]]:
    """Run the trial's script (`template` with its macros expanded) and yield metrics events,
    then its final result (the body of the worker's Ray generator task for a script)."""
    trial_dir = Path(request.checkpoint_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    options = request.wandb
    run_id = options.run_id if options else f"trial-{request.trial_number:04d}"
    param_path, json_path = write_param_files(trial_dir, run_id, request.overrides)
    env = script_env(request, param_path)
    line = expand_command(
        template,
        program=program,
        args=request.overrides,
        args_json_file=str(json_path),
        environ=env,
    )
    metrics = ScriptMetrics(options.wandb_dir, run_id) if options else ScriptMetrics(None, None)
    output_path = trial_dir / OUTPUT_FILE
    output = OutputLog(output_path, request.secrets)
    lines: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    process, readers = _start(line, request.spec_dir, env, output, lines)
    stop_file = trial_dir / STOP_FILE
    stopped = False
    try:
        while process.poll() is None:
            reports = metrics.poll() + _printed_reports(metrics, lines)
            if reports:
                yield {"event": "metrics", "reports": reports}
            if not stopped and stop_file.exists():  # a graceful stop: the script may checkpoint
                stopped = True
                threading.Thread(target=stop_process, args=(process,), daemon=True).start()
            time.sleep(POLL_SECONDS)
    finally:  # Ray's cancel (pruning) raises KeyboardInterrupt: stop it as the agent does
        if process.poll() is None:
            stop_process(process)
    for reader in readers:
        reader.join(timeout=5)
    output.close()
    deadline = time.monotonic() + (EXIT_RECORD_SECONDS if process.returncode == 0 else 1.0)
    while True:  # what it wrote last: printed lines, and the run's end once wandb flushed it
        reports = metrics.poll() + _printed_reports(metrics, lines)
        if reports:
            yield {"event": "metrics", "reports": reports}
        if not metrics.uses_wandb() or metrics.exited or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    code = process.returncode
    if stopped:
        yield {"event": "finished", "result": {"outcome": "stopped", **metrics.final()}}
        return
    if code != 0:
        how = f"signal {-code}" if code < 0 else f"code {code}"
        tail = _tail(output_path)
        raise ScriptFailed(f"{program or line[0]} exited with {how}\n{tail}")
    yield {"event": "finished", "result": metrics.final()}


def _start(
    line: list[str], cwd: str, env: dict[str, str], output: OutputLog, lines: queue.SimpleQueue
) -> tuple[subprocess.Popen, list[threading.Thread]]:
    """Start the script in `cwd`, with threads that copy its stdout (each line handed on to
    `lines` too) and its stderr into `output`."""
    output.write(f"$ {' '.join(line)}\n".encode())
    try:
        process = subprocess.Popen(
            line,
            cwd=cwd or None,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own group: a terminal's Ctrl-C is the controller's
            preexec_fn=_die_with_parent,
        )
    except BaseException:
        output.close()
        raise
    readers = [
        threading.Thread(target=_pump, args=(stream, output, queued), daemon=True)
        for stream, queued in ((process.stdout, lines), (process.stderr, None))
    ]
    for reader in readers:
        reader.start()
    return process, readers


def _printed_reports(metrics: ScriptMetrics, lines: queue.SimpleQueue) -> list[dict[str, Any]]:
    reports = []
    while True:
        try:
            raw = lines.get_nowait()
        except queue.Empty:
            return reports
        report = metrics.printed_report(raw.decode(errors="replace")) if raw else None
        if report:
            reports.append(report)


def _pump(stream: Any, output: OutputLog, lines: queue.SimpleQueue | None) -> None:
    """Copy one of the script's streams into its output log, line by line, and hand each
    line that may be a metrics line on to `lines`."""
    for raw in iter(lambda: stream.readline(LINE_BYTES), b""):
        output.write(raw)
        if lines is not None and len(raw) <= METRIC_LINE_BYTES:
            lines.put(raw)


def stop_process(process: subprocess.Popen, grace: float | None = None) -> int:
    """SIGTERM, then SIGKILL to its whole process group after `grace` seconds (default
    WANDB_AGENT_KILL_DELAY, else 30, as the W&B agent); returns the exit code."""
    if grace is None:
        grace = float(os.environ.get("WANDB_AGENT_KILL_DELAY", KILL_DELAY_SECONDS))
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


def _die_with_parent() -> None:
    """Linux: the script gets SIGKILL if its worker dies (a force-cancelled or killed task).
    Runs in the forked child, so it only calls a function looked up before the fork."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def _find_prctl() -> Any:
    with contextlib.suppress(Exception):
        return ctypes.CDLL(None).prctl if sys.platform == "linux" else None
    return None


_PRCTL = _find_prctl()


def _tail(path: Path, lines: int = OUTPUT_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
