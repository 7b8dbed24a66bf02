"""`JsonRecord`: a dataclass that is written as JSON and read back from any version of it."""

from __future__ import annotations

import dataclasses
from typing import Any, Self


class JsonRecord:
    """For dataclasses kept as JSON (`sweep.json`, `results.json`, a service's answers)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """From JSON as any version wrote it: keys this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in values.items() if k in known})
