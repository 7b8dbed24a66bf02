"""Keep secrets out of everything the orchestrator writes: configs, logs, wandb runs, results.

A secret is a value under a key whose last word is key, token, secret or password
(`WANDB_API_KEY`, `hf_token`, `dbPassword`), or any string that contains the value of an
environment variable whose name contains KEY, TOKEN, SECRET or PASSWORD.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "<redacted>"
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def is_secret_name(name: str) -> bool:
    """Whether a key names a secret: its last word is key, token, secret or password.

    `hf_token`, `WANDB_API_KEY`, `dbPassword` are secrets; `max_tokens`, `key_dim` are not.
    """
    words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)
    return bool(words) and words[-1].upper() in SECRET_WORDS


def secret_env_values() -> list[str]:
    """Values (6+ characters) of environment variables named like secrets."""
    return [
        value
        for name, value in os.environ.items()
        if len(value) >= 6 and any(word in name.upper() for word in SECRET_WORDS)
    ]


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
