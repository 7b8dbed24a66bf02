"""Reading a spec file: YAML with a line number per key, overrides, and readable problems.

The steps of `load`, each collecting problems rather than stopping at the first:
1. parse the YAML safely, remembering the line of every key (`Lines`);
2. flatten `parameters` (nested `parameters:` blocks and dotted keys) and the override maps
   (`trainer:`, `baseline:`, `ablations:`) to dotted keys;
3. apply Hydra-style overrides (`run_cap=4`, `trainer.train.max_steps=50`,
   `parameters.optimizer.lr.values=[1e-3,3e-3]`);
4. resolve the program (`programs.resolve_program`), validate with pydantic (`SweepSpec`),
   then let the program check the spec (the shared trainer checks every key and value
   against its config).
Every problem becomes one line `FILE:LINE: key.path: message`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.programs import resolve_program
from orchestrator.programs.trainer_checks import resolve_base
from orchestrator.spec.model import (
    INTERNAL_FIELDS,
    PARAMETER_FIELDS,
    USER_FIELDS,
    SpecError,
    SweepSpec,
    spec_hash,
)
from orchestrator.spec.parameter import Problems, did_you_mean, show

Loc = tuple[Any, ...]
MAX_SPEC_BYTES = 1 << 20  # a spec file; sweeps are a few hundred lines
MAX_VALUES = 100_000  # keys and values, aliases expanded
MAX_DEPTH = 64  # nesting levels
# Where a key came from: a line of the file, or the text of an override.
Lines = dict[Loc, int | str]


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a float (YAML 1.1 wants `1.0e-3`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> SweepSpec:
    """Read, normalise and validate a spec; raise SpecError listing every problem at once."""
    path, overrides = Path(path), list(overrides)
    where = str(path)
    text = read_text(path)
    raw, lines, problems = parse_yaml(text, where)
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise SpecError(f"{where}:1: the spec must be a mapping of keys (got {got})")

    data, lines, more = normalise(raw, lines)
    problems += more
    for override in overrides:
        problems += apply_override(data, lines, override)
    problems += [
        ((key,), "unknown key" + did_you_mean(key, USER_FIELDS))
        for key in data
        if key in INTERNAL_FIELDS
    ]
    data.setdefault("name", path.stem)
    data |= {"path": path.resolve(), "spec_hash": spec_hash(text, overrides)}
    data["param_paths"] = data.pop("_param_paths")
    data["base"] = resolve_base(data.get("base", "tiny"), path.parent)
    program = data["trial_program"] = resolve_program(data)

    spec = None
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as error:
        problems += pydantic_problems(error)
    problems += program.spec_problems(data)
    if spec is not None and not problems:
        from orchestrator.plan.expand import expand  # plan imports spec: import it once needed

        problems += program.trial_problems(expand(spec), spec.parameters)
    if problems:
        raise SpecError(format_problems(problems, lines, where, overrides))
    return spec


def read_text(path: Path) -> str:
    """The spec file's text: UTF-8, and at most MAX_SPEC_BYTES."""
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{where}: is a directory, not a spec file") from None
    except OSError as e:
        raise SpecError(f"{where}: cannot read ({e.strerror})") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{where}: {len(data):,} bytes; a spec may have {MAX_SPEC_BYTES:,}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise SpecError(
            f"{where}:{line}: not UTF-8 text (byte {e.start}); is this a spec?"
        ) from None


def parse_yaml(text: str, where: str) -> tuple[Any, Lines, list[tuple[Loc, str]]]:
    """The document, the line of each key path, and duplicate-key problems. A document that
    expands (through aliases) to more than MAX_VALUES values, or nests deeper than
    MAX_DEPTH, is refused before it is built: a spec must not be able to stall anything."""
    loader = _Loader(text)
    lines: Lines = {}
    problems: list[tuple[Loc, str]] = []
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines, problems
        _LineRecorder(loader, lines, problems, where).record(node, ())
        return loader.construct_document(node), lines, problems
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        position = f"{mark.line + 1}:{mark.column + 1}" if mark else "1"
        problem = e.problem or e.context or "cannot parse"
        raise SpecError(f"{where}:{position}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as e:
        raise SpecError(f"{where}: YAML error: {e}") from None
    except RecursionError:  # PyYAML reads nesting recursively, before any limit of ours
        raise SpecError(f"{where}: the spec nests deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


class _LineRecorder:
    """Walks the composed YAML (aliases expanded, as the spec will be read) recording the
    line of every key path; counts what it visits against the limits."""

    def __init__(self, loader: _Loader, lines: Lines, problems: list, where: str):
        self.loader, self.lines, self.problems, self.where = loader, lines, problems, where
        self.visited = 0

    def record(self, node: yaml.Node, loc: Loc) -> None:
        self.visited += 1
        here = f"{self.where}:{node.start_mark.line + 1}"
        if self.visited > MAX_VALUES:
            raise SpecError(
                f"{here}: the spec expands to more than {MAX_VALUES:,} values (YAML aliases?)"
            )
        if len(loc) > MAX_DEPTH:
            raise SpecError(f"{here}: the spec nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.loader.construct_object(key_node, deep=True)
                child = (*loc, key)
                line = key_node.start_mark.line + 1
                if child in self.lines:  # the later value wins in YAML; its keys go unchecked
                    self.problems.append(
                        (child, f"duplicate key (first at line {self.lines[child]})")
                    )
                    self.lines[child] = line
                    continue
                self.lines[child] = line
                self.record(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[(*loc, index)] = item.start_mark.line + 1
                self.record(item, (*loc, index))


FLATTENED = ("parameters", "trainer", "baseline", "ablations")


class _Normaliser:
    """Flattens `parameters:` and the override maps to dotted keys. Lines are read from the
    file's key paths (`raw`) and written for the flattened key paths (`lines`); a problem
    found here carries its own line, as two spellings can flatten to one key."""

    def __init__(self, raw_lines: Lines):
        self.raw = raw_lines
        self.lines: Lines = {
            loc: line for loc, line in raw_lines.items() if loc[0] not in FLATTENED or len(loc) == 1
        }
        self.problems: list = []
        self.params: dict[str, Any] = {}
        self.paths: dict[str, tuple[str, ...]] = {}

    def problem(self, raw_loc: Loc, loc: Loc, message: str) -> None:
        self.problems.append((loc, message, self.raw.get(raw_loc)))

    def move(self, old: Loc, new: Loc) -> None:
        """The lines under the file's `old` key path now belong to `new`."""
        for loc, line in self.raw.items():
            if loc[: len(old)] == old:
                self.lines[new + loc[len(old) :]] = line

    def parameters(self, block: dict, raw_loc: Loc, prefix: tuple[str, ...]) -> None:
        for key, value in block.items():
            here, path = (*raw_loc, key), (*prefix, str(key))
            dotted = ".".join(path)
            loc = ("parameters", dotted)
            if not isinstance(value, dict):
                example = f"{{value: {show(value)}}}"
                self.problem(here, loc, f"must be a mapping such as {example} or {{values: [...]}}")
            elif "parameters" in value:
                others = sorted(str(k) for k in value if k != "parameters")
                if others:
                    found = ", ".join(others)
                    self.problem(
                        here, loc, f"a nested parameters block takes no other keys (found {found})"
                    )
                elif isinstance(value["parameters"], dict):
                    self.parameters(value["parameters"], (*here, "parameters"), path)
                else:
                    self.problem(here, loc, "parameters must be a mapping of parameters")
            elif dotted in self.params:
                self.problem(here, loc, f"{dotted} is defined twice, nested and dotted")
            else:
                self.params[dotted] = value
                self.paths[dotted] = path
                self.move(here, loc)

    def flat_map(self, block: dict, raw_loc: Loc, loc: Loc, prefix: str = "") -> dict:
        """{"train": {"max_steps": 5}} -> {"train.max_steps": 5}, lines following along."""
        flat: dict[str, Any] = {}
        for key, value in block.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                inner = self.flat_map(value, (*raw_loc, key), loc, f"{dotted}.")
                for twice in inner.keys() & flat.keys():
                    self.problem((*raw_loc, key), (*loc, twice), "is given twice")
                flat |= inner
            elif dotted in flat:
                self.problem((*raw_loc, key), (*loc, dotted), "is given twice")
            else:
                flat[dotted] = value
                self.move((*raw_loc, key), (*loc, dotted))
        return flat


def normalise(raw: dict, raw_lines: Lines) -> tuple[dict, Lines, list]:
    """Flatten parameters and override maps to dotted keys: (data, lines, problems)."""
    n = _Normaliser(raw_lines)
    data = dict(raw)
    if isinstance(raw.get("parameters"), dict):
        n.parameters(raw["parameters"], ("parameters",), ())
        data["parameters"] = n.params
    for key in ("trainer", "baseline"):
        if isinstance(raw.get(key), dict):
            data[key] = n.flat_map(raw[key], (key,), (key,))
    if isinstance(raw.get("ablations"), dict):
        data["ablations"] = {}
        for name, value in raw["ablations"].items():
            loc = ("ablations", name)
            n.move(loc, loc)
            flat = n.flat_map(value, loc, loc) if isinstance(value, dict) else value
            data["ablations"][name] = flat
    data["_param_paths"] = n.paths
    return data, n.lines, n.problems


def apply_override(data: dict, lines: Lines, override: str) -> list:
    """Apply one `key.path=value` to the normalised data; problems name the override."""
    label = override_label(override)
    key, sep, text = override.partition("=")
    key = key.strip().lstrip("+")
    if not sep or not key:
        return [((), "expected key=value", label)]
    try:
        value = yaml.load(text, Loader=_Loader) if text.strip() else None  # noqa: S506 (SafeLoader)
    except yaml.YAMLError as e:
        return [((), f"cannot read the value ({getattr(e, 'problem', e)})", label)]
    head, _, rest = key.partition(".")
    if head not in USER_FIELDS:
        return [((), f"unknown key '{head}'{did_you_mean(head, USER_FIELDS)}", label)]
    if head in ("trainer", "baseline") and rest:
        loc = (head, rest)
    elif head == "ablations" and "." in rest:
        name, _, inner = rest.partition(".")
        loc = (head, name, inner)
    elif head == "parameters" and rest:
        loc = _parameter_loc(data.get("parameters", {}), rest, value)
        if loc[-1] == rest and not isinstance(value, dict):
            value = {"values": value} if isinstance(value, list) else {"value": value}
    else:
        loc = tuple(key.split("."))
    target = data
    for part in loc[:-1]:
        if not isinstance(target.get(part, {}), dict):
            return [((), f"{part} is not a mapping", label)]
        target = target.setdefault(part, {})
    target[loc[-1]] = value
    for old in [old for old in lines if old[: len(loc)] == loc]:
        del lines[old]
    for end in range(len(loc), 0, -1):  # keys the override creates point at it too
        if end < len(loc) and loc[:end] in lines:
            break
        lines[loc[:end]] = label
    return []


def _parameter_loc(params: dict, rest: str, value: Any) -> Loc:
    """`optimizer.lr.values` -> ("parameters", "optimizer.lr", "values")."""
    name, _, field = rest.rpartition(".")
    if rest not in params and name and field in PARAMETER_FIELDS:
        return ("parameters", name, field)
    return ("parameters", rest)


def pydantic_problems(error: ValidationError) -> list[tuple[Loc, str]]:
    """Pydantic's errors as (key path, short message) pairs."""
    problems = []
    for e in error.errors():
        loc, kind, given = tuple(e["loc"]), e["type"], e.get("input")
        cause = e.get("ctx", {}).get("error")
        if isinstance(cause, Problems):
            problems += [((*loc, *sub), message) for sub, message in cause.items]
        elif kind == "value_error":
            problems += [(loc, line) for line in str(cause).splitlines()]
        elif kind == "extra_forbidden":
            allowed = _fields_at(loc[:-1])
            problems.append((loc, "unknown key" + did_you_mean(loc[-1], allowed)))
        elif kind == "missing":
            problems.append((loc, "required"))
        elif kind == "literal_error":
            choices = re.findall(r"'([^']*)'", e["ctx"]["expected"])
            hint = did_you_mean(given, choices) if isinstance(given, str) else ""
            problems.append((loc, f"must be one of {', '.join(choices)} (got {show(given)}){hint}"))
        else:
            problems.append((loc, _type_message(kind, e, given)))
    return problems


_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "string": "a string",
    "bool": "true or false",
    "list": "a list",
    "dict": "a mapping",
    "model": "a mapping",
    "model_attributes": "a mapping",
    "tuple": "a list",
}


def _type_message(kind: str, e: dict, given: Any) -> str:
    base = kind.removesuffix("_type").removesuffix("_parsing").removesuffix("_from_float")
    if base in _EXPECTED:
        return f"must be {_EXPECTED[base]} (got {show(given)})"
    ctx = e.get("ctx", {})
    for bound, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if bound in ctx:
            return f"must be {sign} {ctx[bound]} (got {show(given)})"
    return e["msg"]


def _fields_at(loc: Loc) -> list[str]:
    """The keys allowed at `loc` (for "did you mean"), walking SweepSpec's field types."""
    model: Any = SweepSpec
    fields = list(USER_FIELDS)
    for part in loc:
        annotation = model.model_fields[part].annotation if _is_model(model) else None
        if annotation is None and get_origin(model) is dict:
            annotation = get_args(model)[1]
        model = _unwrap(annotation)
        fields = list(model.model_fields) if _is_model(model) else []
    return fields


def _unwrap(annotation: Any) -> Any:
    for arg in (annotation, *get_args(annotation)):
        if _is_model(arg) or get_origin(arg) is dict:
            return arg
    return annotation


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def format_problems(problems: list, lines: Lines, where: str, overrides: list[str]) -> list[str]:
    """`FILE:LINE: key.path: message` lines in file order, then by override; no repeats.

    A problem is (key path, message) or (key path, message, line); the line is a number in the
    file or the label of the override that set the key (`FILE: override 'k=v': key: message`).
    """
    labels = [override_label(o) for o in overrides]
    out: dict[str, int] = {}
    for loc, message, *line in problems:
        line = line[0] if line and line[0] is not None else _line_of(loc, lines)
        if isinstance(line, int):
            head, order = f"{where}:{line}", line
        elif isinstance(line, str):
            head, order = f"{where}: {line}", 10**9 + labels.index(line)
        else:
            head, order = where, 0
        text = ": ".join(part for part in (head, _dotted(loc), message) if part)
        out.setdefault(text, order)
    return sorted(out, key=out.__getitem__)


def override_label(override: str) -> str:
    return f"override '{override}'"


def _line_of(loc: Loc, lines: Lines) -> int | str | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text
