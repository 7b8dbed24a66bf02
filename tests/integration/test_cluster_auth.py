"""A token-authenticated Ray head (Ray 2.60 turns it on for a head started where
`~/.ray/auth_token` exists): the service commands and `orchestrate SPEC --address` work with
the token only where Ray keeps it (`~/.ray/auth_token`, `RAY_AUTH_TOKEN_PATH`,
`RAY_AUTH_TOKEN`) and no RAY_AUTH_MODE; without a token, or with a wrong one, one line says
how to give it, exit 2."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import trials_of, wait_for, write_spec
from optuna.trial import TrialState
from ray._private.authentication.authentication_token_generator import (
    generate_new_authentication_token,
)
from ray.job_submission import JobSubmissionClient
from ray_heads import orchestrate, ray_head

pytestmark = pytest.mark.cluster

SPEC = """
    name: {name}
    method: grid
    program: sweep_programs:steps
    metric: {{name: loss, goal: minimize}}
    parameters:
      x: {{values: [1.0, 2.0]}}
      steps: {{value: 3}}
      step_seconds: {{value: 0.01}}
"""


def home_with(token: str | None, where: Path) -> Path:
    where.mkdir(parents=True)
    if token is not None:
        (where / ".ray").mkdir()
        (where / ".ray" / "auth_token").write_text(token)
    return where


@pytest.fixture(scope="module")
def token() -> str:
    return generate_new_authentication_token()


@pytest.fixture(scope="module")
def head(token, tmp_path_factory):
    home = home_with(token, tmp_path_factory.mktemp("token_head") / "home")
    with ray_head(Path(sys.executable), home, token_auth=True) as started:
        with pytest.raises(urllib.error.HTTPError) as refused:  # token auth is really on
            urllib.request.urlopen(started.dashboard + "/api/jobs/", timeout=10)
        assert refused.value.code == 401
        yield started


def test_service_commands_and_address_with_the_token_only_in_home(head, token, tmp_path):
    client_home = home_with(token, tmp_path / "client_home")
    spec = write_spec(tmp_path / "spec", SPEC.format(name="authed"))
    runs = tmp_path / "cluster_runs"

    def cli(*args: str) -> str:
        done = orchestrate(*args, cwd=tmp_path, home=client_home)
        assert done.returncode == 0, (args, done.stderr[-3000:])
        return done.stdout

    cli("submit", str(spec), "--address", head.dashboard, "--runs", str(runs))
    jobs = JobSubmissionClient(head.dashboard, headers={"authorization": f"Bearer {token}"})
    (job,) = [j for j in jobs.list_jobs() if (j.metadata or {}).get("sweep") == "authed"]
    wait_for(lambda: jobs.get_job_status(job.submission_id).is_terminal(), timeout=300)
    assert jobs.get_job_status(job.submission_id).name == "SUCCEEDED"
    (overview,) = json.loads(cli("status", "authed", "--address", head.dashboard, "--json"))
    assert overview["counts"] == {"complete": 2}
    assert "sweep authed ended" in cli("logs", "authed", "--address", head.dashboard)
    local = tmp_path / "local_runs"
    cli("pull", "authed", "--address", head.dashboard, "--runs", str(local))
    assert len(trials_of(local / "authed")) == 2

    address_spec = write_spec(tmp_path / "spec", SPEC.format(name="joined"), "joined.yaml")
    cli(str(address_spec), "--address", head.gcs, "--runs", str(tmp_path / "runs"))
    trials = trials_of(tmp_path / "runs" / "joined")
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE for t in trials)

    # The token's other places, as Ray reads them: a file named by RAY_AUTH_TOKEN_PATH, or
    # the variable RAY_AUTH_TOKEN itself; with no ~/.ray/auth_token.
    empty_home = home_with(None, tmp_path / "empty_home")
    for env in (
        {"RAY_AUTH_TOKEN_PATH": str(client_home / ".ray" / "auth_token")},
        {"RAY_AUTH_TOKEN": token},
    ):
        done = orchestrate("ls", "--address", head.dashboard, cwd=tmp_path, home=empty_home, **env)
        assert done.returncode == 0 and "authed" in done.stdout, (env, done.stderr)


def test_without_a_token_one_line_says_how_to_give_it(head, tmp_path):
    spec = write_spec(tmp_path / "spec", SPEC.format(name="refused"))
    empty_home = home_with(None, tmp_path / "empty_home")
    commands = [
        ["status", "--address", head.dashboard],
        ["submit", str(spec), "--address", head.dashboard, "--runs", str(tmp_path / "cr")],
        [str(spec), "--address", head.gcs, "--runs", str(tmp_path / "runs")],
    ]
    for argv in commands:
        for env, said in (
            ({}, "the Ray cluster requires an authentication token: put it in ~/.ray/auth_token"),
            (
                {"RAY_AUTH_TOKEN": "0" * 32},
                "rejected the authentication token from $RAY_AUTH_TOKEN",
            ),
        ):
            done = orchestrate(*argv, cwd=tmp_path, home=empty_home, timeout=120, **env)
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 2 and len(lines) == 1, (argv, env, done.stderr[-2000:])
            assert said in lines[0] and "Traceback" not in lines[0], lines
