"""Sweep specs: a YAML file (a superset of W&B's sweep config) -> a validated `SweepSpec`.

`load_spec(path, overrides)` reports every problem at once, one `FILE:LINE: key: message`
line each (`SpecError`), before anything runs.
"""

from orchestrator.spec.load import load_spec
from orchestrator.spec.model import SpecError, SweepSpec
from orchestrator.spec.parameter import Parameter

__all__ = ["Parameter", "SpecError", "SweepSpec", "load_spec"]
