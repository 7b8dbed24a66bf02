"""`orchestrate dashboard runs/<sweep>`: optuna-dashboard on the sweep's Optuna storage.

The store is a plain Optuna storage (a journal file by default), so Optuna's own dashboard
shows the sweep's trials, intermediate values, importances and plots, also while it runs.
optuna-dashboard is an optional extra: `pip install 'orchestrate[dashboard]'`.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from orchestrator import store
from orchestrator.errors import UserError
from orchestrator.store.database import shown


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8080) -> int:
    """Serve the dashboard until Ctrl-C or SIGTERM."""
    try:
        import optuna_dashboard
    except ImportError:
        raise UserError(
            "optuna-dashboard is not installed: pip install 'orchestrate[dashboard]'"
        ) from None
    info = store.read_sweep_file(Path(run_dir))
    storage = store.open_storage(info.storage, Path(info.run_dir))
    study_id = storage.get_study_id_from_name(info.study_name)
    print(
        f"optuna-dashboard for {info.name} (study {info.study_name!r}, {shown(info.storage)}): "
        f"http://{host}:{port}/dashboard/studies/{study_id}  (Ctrl-C to stop)",
        flush=True,
    )
    # The server runs in a thread and the main thread waits for Ctrl-C or SIGTERM: raised as
    # KeyboardInterrupt in the server itself, a signal that came during a request was taken
    # for that request's error by wsgiref (its bare `except:`), and the server went on.
    stopped = threading.Event()
    for stop in (signal.SIGINT, signal.SIGTERM):  # both end it (SIGINT may come in ignored)
        signal.signal(stop, lambda signum, frame: stopped.set())
    failed: list[BaseException] = []

    def run() -> None:
        try:
            optuna_dashboard.run_server(storage, host=host, port=port)
        except BaseException as error:  # the port taken, say: said in the main thread
            failed.append(error)

    server = threading.Thread(target=run, name="optuna-dashboard", daemon=True)
    server.start()
    while server.is_alive() and not stopped.wait(0.5):
        pass
    if failed:
        raise UserError(f"optuna-dashboard stopped: {type(failed[0]).__name__}: {failed[0]}")
    return 0
