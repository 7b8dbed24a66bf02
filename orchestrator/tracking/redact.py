"""Keep secrets out of everything the orchestrator writes: configs, logs, wandb runs, results,
a trial's captured output; and `${envvar:NAME}`, the way to pass a secret without writing it.

A secret is a value under a key named like one (`is_secret_name`: `WANDB_API_KEY`,
`hf_token`, `dbPassword`, `db_password_hash`), or any string that contains the value of an
environment variable whose name contains KEY, TOKEN, SECRET or PASSWORD. Free text (output,
failure reasons) has each known secret value (6+ characters) replaced by `<redacted>`.

`${envvar:NAME}` in a parameter's value (or a command) stands for the variable NAME as set on
the worker: the spec, the store and every output keep the literal text, and only the program
gets the value, read when the trial starts.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, AnyStr

REDACTED = "<redacted>"
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
SECRET_ANYWHERE = ("SECRET", "PASSWORD", "PASSWD")  # a secret wherever they are in the name
MIN_SECRET_LENGTH = 6  # shorter values are not searched for in free text: too many false hits
ENVVAR_MACRO = re.compile(r"\$\{envvar:([A-Za-z_][A-Za-z0-9_]*)\}")


class EnvvarNotSet(RuntimeError):
    """A `${envvar:NAME}` names a variable that is not set where the trial runs."""

    def __init__(self, message: str, name: str = ""):
        super().__init__(message)
        self.name = name  # the variable


def is_secret_name(name: str) -> bool:
    """Whether a key names a secret: its last word is key, token, secret or password (and not
    a unit: `..._per_token`), or any word is secret, password or passwd.

    `hf_token`, `WANDB_API_KEY`, `dbPassword`, `db_password_hash` are secrets; `max_tokens`,
    `key_dim`, `tokenizer`, `secretary_id`, `flops_per_token` are not.
    """
    words = [word.upper() for word in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)]
    if any(w in SECRET_ANYWHERE for w in words):
        return True
    return bool(words) and words[-1] in SECRET_WORDS and words[-2:-1] != ["PER"]


def secret_env_values() -> list[str]:
    """Values (6+ characters) of environment variables named like secrets."""
    return [
        value
        for name, value in os.environ.items()
        if len(value) >= MIN_SECRET_LENGTH and any(word in name.upper() for word in SECRET_WORDS)
    ]


def secret_values(params: Mapping[str, Any] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """The strings to keep out of free text: the values of `params` under secret names (at any
    depth), `extra`, and `secret_env_values()`; longest first, so that a secret that contains
    another is replaced whole."""
    found = [*_named_values(params or {}), *extra, *secret_env_values()]
    kept = {value for value in found if len(value) >= MIN_SECRET_LENGTH}
    return sorted(kept, key=len, reverse=True)


def _named_values(params: Mapping[str, Any], secret: bool = False) -> list[str]:
    values = []
    for key, value in params.items():
        named = secret or is_secret_name(str(key))
        if isinstance(value, Mapping):
            values += _named_values(value, named)
        elif named and value is not None:
            values.append(str(value))
    return values


def redact_text(text: AnyStr, secrets: Iterable[AnyStr]) -> AnyStr:
    """`text` (str, or bytes with bytes secrets) with every secret in it replaced by
    `<redacted>`."""
    mask: Any = REDACTED if isinstance(text, str) else REDACTED.encode()
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, mask)
    return text


def expand_envvars(value: Any, environ: Mapping[str, str]) -> tuple[Any, list[str]]:
    """`value` (a string, or dicts and lists of them) with every `${envvar:NAME}` replaced by
    NAME's value in `environ`, and the values put in; EnvvarNotSet names an unset one."""
    used: list[str] = []

    def expand(item: Any) -> Any:
        if isinstance(item, str):
            return ENVVAR_MACRO.sub(lambda match: look_up(match.group(1)), item)
        if isinstance(item, Mapping):
            return {key: expand(v) for key, v in item.items()}
        if isinstance(item, list | tuple):
            return [expand(v) for v in item]
        return item

    def look_up(name: str) -> str:
        if name not in environ:
            raise EnvvarNotSet(f"${{envvar:{name}}}: {name} is not set on this worker", name)
        used.append(environ[name])
        return environ[name]

    return expand(value), used


def sanitize(value: Any, secret_values: Iterable[str] = ()) -> Any:
    """`value` as plain JSON-able data with secrets replaced by `<redacted>`.

    Dataclasses become dicts, tuples and sets lists, numpy and torch values numbers or lists,
    other objects their `str`.
    """
    secret_values = tuple(secret_values)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if is_secret_name(str(k)) else sanitize(v, secret_values)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [sanitize(v, secret_values) for v in value]
    if isinstance(value, str):
        return REDACTED if any(s in value for s in secret_values) else value
    if value is None or isinstance(value, bool | int | float):
        return value
    if hasattr(value, "tolist"):  # numpy and torch scalars and arrays
        return sanitize(value.tolist(), secret_values)
    return sanitize(str(value), secret_values)
