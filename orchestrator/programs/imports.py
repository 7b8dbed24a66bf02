"""What a user's Python file imports at its top level, read (not run) with `ast`: the
packages a node must have for a trial of it to start (`Program.imports_needed`), so that a
node lacking one is found before the sweep starts, not by every trial failing alike."""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def top_level_imports(path: Path, local_dirs: list[Path]) -> list[str]:
    """The top-level packages `path` imports unconditionally (statements of the module's body;
    an import inside `try`, `if` or a function may be optional), without the standard
    library's and without modules found in `local_dirs` (they travel with the spec's
    directory). An unreadable file or a syntax error gives none: the trial will say it."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module.split(".")[0])
    return [
        name
        for name in dict.fromkeys(names)
        if name != "__future__"
        and name not in sys.stdlib_module_names
        and not any(_is_local(name, directory) for directory in local_dirs)
    ]


def _is_local(name: str, directory: Path) -> bool:
    return (directory / f"{name}.py").is_file() or (directory / name).is_dir()
