"""The spec's `checkpoints:` key: where trial checkpoints live, so that a trial retried on
another node resumes (`programs.checkpoint_store` says how they are kept there)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from orchestrator.programs.checkpoint_store import DEFAULT_KEEP, uri_problem
from orchestrator.spec.parameter import StrictModel


class Checkpoints(StrictModel):
    """`checkpoints: URI` (s3://, gs://, file://, or a path every node shares) or
    `{uri: URI, keep: K}`: the last K checkpoints of each trial are kept (default 2)."""

    uri: str
    keep: Annotated[int, Field(ge=1)] = DEFAULT_KEEP

    @model_validator(mode="before")
    @classmethod
    def _from_uri(cls, value: Any) -> Any:
        return {"uri": value} if isinstance(value, str) else value

    @field_validator("uri")
    @classmethod
    def _uri(cls, uri: str) -> str:
        problem = uri_problem(uri)
        if problem:
            raise ValueError(problem)
        return uri
