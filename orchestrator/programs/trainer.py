"""The shared trainer as a trial's program: `trainer.train.train` on its typed Config."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.programs import trainer_checks
from orchestrator.programs.base import Problem, Program, TrialRequest
from orchestrator.programs.in_process import Prepared, run_in_thread

# What `program:` may say to run the shared trainer (none at all does too).
TRAINER_NAMES = (
    "trainer",
    "-m trainer",
    "python -m trainer",
    "trainer.train:train",
    "trainer:train",
)


@dataclass(frozen=True)
class TrainerProgram(Program):
    """`trainer.train(config, report, checkpoint_dir)` with `base` (a preset or a config file)
    and the trial's overrides; every spec key and value is checked against its config."""

    base: str = "tiny"
    fixed: dict[str, Any] = field(default_factory=dict)  # the spec's `trainer:` overrides

    seed_key = "train.seed"

    @property
    def label(self) -> str:
        return f"base {self.base}"

    def spec_problems(self, data: dict[str, Any]) -> list[Problem]:
        return trainer_checks.check_metric(data) + trainer_checks.check_against_trainer(data)

    def trial_problems(self, trials: list[Any], parameters: dict[str, Any]) -> list[Problem]:
        return trainer_checks.check_trials(self.base, trials, parameters)

    def iteration_steps(self) -> int:
        """The trainer reports the metric every `train.eval_every` steps."""
        from trainer.config import load_config

        return load_config(self.base, self.fixed).train.eval_every

    def wandb_command(self, raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """`${env} ${interpreter} -m trainer --preset BASE ${args}`, unless the spec has its
        own command."""
        if "command" in raw:
            return {"command": raw["command"]}, []
        command = ["${env}", "${interpreter}", "-m", "trainer", "--preset", self.base, "${args}"]
        return {"command": command}, []

    def run(self, request: TrialRequest) -> Iterator[dict[str, Any]]:
        return run_in_thread(request, self._prepare)

    def _prepare(self, request: TrialRequest) -> Prepared:
        from trainer.config import config_to_dict, load_config
        from trainer.train import train

        config = load_config(self.base, request.overrides)

        def log_sample(trial_log: Any, result: dict[str, Any]) -> None:
            if result.get("sample"):  # the trainer's generated text
                trial_log.log_text_generation(
                    prompt=config.train.sample_prompt,
                    generated_text=result["sample"],
                    temperature=config.train.sample_temperature,
                    top_p=config.train.sample_top_p,
                    max_tokens=config.train.sample_tokens,
                    step=result.get("step"),
                )

        return Prepared(train, config, config_to_dict(config), log_sample)
