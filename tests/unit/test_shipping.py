"""Code shipping, the node probe and token authentication, in their parts that need no Ray
running: the runtime environment built, what a user's file imports, what a node reports
missing and the line that says so, and the token's header and failures."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

import orchestrator
import trainer
from orchestrator.programs.base import TrialRequest
from orchestrator.programs.function import FunctionProgram
from orchestrator.programs.imports import top_level_imports
from orchestrator.programs.script import ScriptProgram
from orchestrator.programs.trainer import TrainerProgram
from orchestrator.run import auth, probe, shipping

SCRIPT = """
from __future__ import annotations
import os, json
import numpy as np
import einops.layers
from transformers import AutoModel
from . import sibling
import helper
import localpkg.sub

try:
    import optional_thing
except ImportError:
    optional_thing = None

def main():
    import lazy_thing
"""


def test_top_level_imports_are_the_third_party_packages_a_file_needs(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    (tmp_path / "helper.py").write_text("")
    (tmp_path / "localpkg").mkdir()
    found = top_level_imports(tmp_path / "train.py", [tmp_path])
    assert found == ["numpy", "einops", "transformers"]
    (tmp_path / "broken.py").write_text("import (")
    assert top_level_imports(tmp_path / "broken.py", [tmp_path]) == []
    assert top_level_imports(tmp_path / "absent.py", [tmp_path]) == []


def test_each_program_names_the_imports_its_trials_need(tmp_path):
    (tmp_path / "train.py").write_text("import wandb\nimport einops\nimport helper\n")
    (tmp_path / "helper.py").write_text("import scipy\n")  # beside the spec: shipped with it
    (tmp_path / "mine.py").write_text("import sklearn\nimport helper\ndef run(): pass\n")
    script = ScriptProgram("train.py")
    assert script.imports_needed(tmp_path) == {"wandb": "train.py", "einops": "train.py"}
    assert ScriptProgram(None, ["bash", "run.sh"]).imports_needed(tmp_path) == {}
    assert FunctionProgram("mine:run").imports_needed(tmp_path) == {"sklearn": "mine.py"}
    assert FunctionProgram("json:loads").imports_needed(tmp_path) == {}  # installed: not ours
    assert TrainerProgram("tiny").imports_needed(tmp_path) == {}


def test_the_runtime_env_ships_both_packages_and_the_spec_dir(tmp_path):
    env = shipping.runtime_env(tmp_path, {"A": "1"})
    assert env["py_modules"] == [
        str(Path(orchestrator.__file__).resolve().parent),
        str(Path(trainer.__file__).resolve().parent),
    ]
    assert env["working_dir"] == str(tmp_path)
    assert {".git", ".venv", "runs", "__pycache__", "wandb"} <= set(env["excludes"])
    assert env["env_vars"] == {"A": "1", shipping.SHIPPED_ENV: "1"}
    queries = shipping.runtime_env()  # the service's queries: orchestrate alone
    assert "working_dir" not in queries and queries["env_vars"] == {}


def test_a_worker_of_a_shipped_job_runs_in_its_copy_of_the_spec_dir(tmp_path, monkeypatch):
    request = TrialRequest(
        0, ScriptProgram("train.py"), {}, "ckpt", python_path=["/home/me/spec", "/home/me"]
    )
    request.spec_dir = "/home/me/spec"
    assert shipping.as_shipped(request) is request  # not shipped: as the controller sent it
    monkeypatch.setenv(shipping.SHIPPED_ENV, "1")
    monkeypatch.chdir(tmp_path)
    moved = shipping.as_shipped(request)
    assert moved.spec_dir == str(tmp_path)
    assert moved.python_path == [str(tmp_path), "/home/me"]


def test_the_probe_reports_each_missing_package_and_who_wanted_it(tmp_path, monkeypatch):
    (tmp_path / "needs_dep.py").write_text("import nosuch_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = probe.probe(["json", "nosuch_runtime_xyz", "needs_dep"], ["os", "nosuch_user_pkg_xyz"])
    assert found == [
        ("nosuch_runtime_xyz", "nosuch_runtime_xyz"),
        ("nosuch_dependency_xyz", "needs_dep"),
        ("nosuch_user_pkg_xyz", "nosuch_user_pkg_xyz"),
    ]
    sys.modules.pop("needs_dep", None)
    user = probe._line("einops", "train.py", ["10.0.0.12"])
    assert user == (
        "node 10.0.0.12: cannot import einops (train.py imports it): install it in the "
        "Python that runs Ray on every node"
    )
    ours = probe._line("yaml", "orchestrator.run.worker", ["10.0.0.2", "10.0.0.1"])
    assert ours.startswith("nodes 10.0.0.1, 10.0.0.2: cannot import yaml (pip install PyYAML)")
    assert "(a trial needs it)" in ours


def test_token_failures_are_one_line_saying_how_to_give_it(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    url = "http://head:8265"
    missing = auth.http_failure(
        url,
        RuntimeError("Authentication required: Unauthorized: Missing authentication token\n\nmore"),
    )
    assert missing is not None and len(missing.lines) == 1
    assert "requires an authentication token: put it in ~/.ray/auth_token" in missing.lines[0]
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", "/etc/ray-token")
    rejected = auth.http_failure(
        url, RuntimeError("Authentication failed: Forbidden: Invalid authentication token")
    )
    assert rejected is not None and "rejected the authentication token from /etc/ray-token" in str(
        rejected
    )
    assert auth.http_failure(url, ConnectionError("refused")) is None


@pytest.fixture
def fresh_token_loader():
    from ray._raylet import AuthenticationTokenLoader

    AuthenticationTokenLoader.instance().reset_cache()
    yield
    AuthenticationTokenLoader.instance().reset_cache()


def test_the_token_header_comes_from_where_ray_keeps_it(tmp_path, monkeypatch, fresh_token_loader):
    from ray._raylet import AuthenticationTokenLoader

    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert auth.http_headers() == {}
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("a" * 32)
    AuthenticationTokenLoader.instance().reset_cache()
    assert auth.http_headers() == {"authorization": "Bearer " + "a" * 32}
    monkeypatch.setenv("RAY_AUTH_TOKEN", "b" * 32)  # first in Ray's order
    AuthenticationTokenLoader.instance().reset_cache()
    assert auth.http_headers() == {"authorization": "Bearer " + "b" * 32}
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the user said: send none
    assert auth.http_headers() == {}
    assert os.environ["RAY_AUTH_MODE"] == "disabled"
