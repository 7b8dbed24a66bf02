"""A user's Python function as a trial's program: `program: module:function`."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError
from orchestrator.programs.base import Problem, Program, TrialRequest
from orchestrator.programs.imports import top_level_imports
from orchestrator.programs.in_process import Prepared, run_in_thread


@dataclass(frozen=True)
class FunctionProgram(Program):
    """`function(config: dict, report, checkpoint_dir) -> dict`, found in the spec's directory
    (or the working directory); the config is the trial's parameters as dotted keys."""

    target: str  # "module:function"

    @property
    def label(self) -> str:
        return f"program {self.target}"

    def spec_problems(self, data: dict[str, Any]) -> list[Problem]:
        """The module must be found from the spec's directory (or the working directory, or
        be installed) and define the function: else every trial would fail the same way."""
        from orchestrator.store.sweep_file import sweep_of_spec_copy  # not on a worker's path

        spec_dir = Path(data["path"]).parent if data.get("path") else Path.cwd()
        if data.get("path") and sweep_of_spec_copy(data["path"]):
            return []  # a sweep's copy of its spec (resume, report): checked when it started
        module_name, _, function_name = self.target.partition(":")
        problem = missing_function(module_name, function_name or "main", [spec_dir, Path.cwd()])
        return [(("program",), problem)] if problem else []

    def wandb_command(self, raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        raise UserError(
            f"program: {self.target} is a Python function; a W&B agent runs a script or a "
            "command (write a script that calls it, or use the shared trainer)"
        )

    def imports_needed(self, spec_dir: Path) -> dict[str, str]:
        """The top-level imports of the function's module when it lies in the spec's
        directory (an installed module's are its installer's business)."""
        module_name = self.target.partition(":")[0]
        top, _, rest = module_name.partition(".")
        found = importlib.machinery.PathFinder.find_spec(top, [str(spec_dir)])
        if found is None or not found.origin:
            return {}
        path = Path(found.origin)
        if rest:
            path = path.parent.joinpath(*rest.split(".")).with_suffix(".py")
        names = top_level_imports(path, [path.parent, Path(spec_dir)])
        return dict.fromkeys(names, path.name)

    def run(self, request: TrialRequest) -> Iterator[dict[str, Any]]:
        return run_in_thread(request, self._prepare)

    def _prepare(self, request: TrialRequest) -> Prepared:
        for path in reversed(request.python_path):
            if path not in sys.path:
                sys.path.insert(0, path)
        module_name, _, function_name = self.target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name or "main")
        return Prepared(function, dict(request.overrides), dict(request.overrides))


def missing_function(module_name: str, function_name: str, dirs: list[Path]) -> str | None:
    """Why `module_name:function_name` cannot be called, or None. A module file in `dirs` is
    read, not run (its top level must define the function); an installed one is imported."""
    top, _, rest = module_name.partition(".")
    found = importlib.machinery.PathFinder.find_spec(top, [str(d) for d in dirs])
    if found is None:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            where = " or ".join(dict.fromkeys(str(d) for d in dirs))
            return f"cannot import {module_name} from {where} ({error})"
        return (
            None
            if callable(getattr(module, function_name, None))
            else (f"{module_name} has no function {function_name}")
        )
    path = Path(found.origin or "")
    if rest:  # a module inside a package beside the spec
        path = path.parent.joinpath(*rest.split(".")).with_suffix(".py")
    if path.suffix != ".py" or not path.is_file():
        return None  # a compiled or namespace module: leave it to the trial
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except SyntaxError as error:
        return f"{path}:{error.lineno}: syntax error ({error.msg})"
    if function_name not in _top_level_names(tree):
        return f"{path} has no function {function_name}"
    return None


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names
