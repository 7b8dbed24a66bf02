"""Expansion of specs into trials, W&B distributions, Optuna parts, and the shipped sweeps."""

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from conftest import ROOT

from orchestrator import cli
from orchestrator.plan.expand import expand, grid_values, sample, trainer_overrides
from orchestrator.plan.search import make_pruner, make_sampler, param_distributions, suggest
from orchestrator.programs import ScriptProgram, TrainerProgram
from orchestrator.spec import load_spec
from trainer.config import load_config

SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))

# Every W&B distribution, with parameters chosen so that the samples' bounds tell the
# W&B meaning apart from a plausible mistake (exponents vs values, inclusive ends, ...).
DISTRIBUTIONS = {
    "constant": {"value": 3},
    "categorical": {"values": ["a", "b", "c"]},
    "int_uniform": {"min": 2, "max": 5},
    "uniform": {"min": -1.0, "max": 2.0},
    "q_uniform": {"distribution": "q_uniform", "min": 0.3, "max": 2.0, "q": 0.5},
    "log_uniform": {"distribution": "log_uniform", "min": -5, "max": 0},
    "log_uniform_values": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
    "q_log_uniform": {"distribution": "q_log_uniform", "min": 0, "max": 5, "q": 2},
    "q_log_uniform_values": {
        "distribution": "q_log_uniform_values",
        "min": 1,
        "max": 1000,
        "q": 10,
    },
    "inv_log_uniform": {"distribution": "inv_log_uniform", "min": 0, "max": 3},
    "inv_log_uniform_values": {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1},
    "normal": {"distribution": "normal", "mu": 5, "sigma": 2},
    "q_normal": {"distribution": "q_normal", "mu": 0, "sigma": 3},
    "log_normal": {"distribution": "log_normal", "mu": 0, "sigma": 1},
    "q_log_normal": {"distribution": "q_log_normal", "mu": 2, "sigma": 0.5, "q": 0.5},
    "beta": {"distribution": "beta", "a": 2, "b": 5},
    "q_beta": {"distribution": "q_beta", "q": 0.25},
}
# (low, high) every sample must lie in, and whether samples are ints.
EXPECTED = {
    "int_uniform": ((2, 5), True),
    "uniform": ((-1.0, 2.0), False),
    "q_uniform": ((0.5, 2.0), False),
    "log_uniform": ((math.exp(-5), 1.0), False),
    "log_uniform_values": ((1e-4, 1e-1), False),
    "q_log_uniform": ((2, 148), True),
    "q_log_uniform_values": ((10, 1000), True),
    "inv_log_uniform": ((math.exp(-3), 1.0), False),
    "inv_log_uniform_values": ((0.01, 1.0), False),
    "normal": ((-math.inf, math.inf), False),
    "q_normal": ((-math.inf, math.inf), True),
    "log_normal": ((0.0, math.inf), False),
    "q_log_normal": ((0.0, math.inf), False),
    "beta": ((0.0, 1.0), False),
    "q_beta": ((0.0, 1.0), False),
}
QUANTUM = {"q_uniform": 0.5, "q_log_uniform": 2, "q_log_uniform_values": 10, "q_normal": 1}
QUANTUM |= {"q_log_normal": 0.5, "q_beta": 0.25}


def write_spec(tmp_path: Path, spec: dict, name: str = "spec") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def program_spec(tmp_path, parameters, **extra):
    """A spec for a user's program (keys are not checked against the trainer)."""
    spec = {"method": "random", "run_cap": 4, "program": "train.py", "parameters": parameters}
    return load_spec(write_spec(tmp_path, spec | extra))


@pytest.fixture(scope="module")
def all_distributions(tmp_path_factory):
    return program_spec(tmp_path_factory.mktemp("dists"), DISTRIBUTIONS)


def test_every_distribution_is_inferred_or_named(all_distributions):
    assert {p.distribution for p in all_distributions.parameters.values()} == set(DISTRIBUTIONS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_random_samples_stay_within_bounds(all_distributions, name):
    p = all_distributions.parameters[name]
    rng = np.random.default_rng(0)
    draws = [sample(p, rng) for _ in range(2000)]
    (low, high), ints = EXPECTED[name]
    assert all(low <= x <= high for x in draws), (min(draws), max(draws))
    assert all(isinstance(x, int) == ints for x in draws)
    if name in QUANTUM:
        q = QUANTUM[name]
        assert all(abs(x / q - round(x / q)) < 1e-9 for x in draws)
    if math.isfinite(low) and math.isfinite(high) and name != "beta":
        # the draws fill their range: a wrong reading of the bounds would not
        spread = (max(draws) - min(draws)) / (high - low)
        assert spread > 0.9, spread


def test_log_uniform_spreads_evenly_over_exponents(all_distributions):
    rng = np.random.default_rng(1)
    exps = [math.log(sample(all_distributions.parameters["log_uniform"], rng)) for _ in range(4000)]
    assert abs(np.median(exps) - (-2.5)) < 0.15
    values = all_distributions.parameters["log_uniform_values"]
    logs = [math.log10(sample(values, rng)) for _ in range(4000)]
    assert abs(np.median(logs) - (-2.5)) < 0.1


def test_constant_and_categorical_samples(all_distributions):
    rng = np.random.default_rng(2)
    assert {sample(all_distributions.parameters["constant"], rng) for _ in range(20)} == {3}
    drawn = {sample(all_distributions.parameters["categorical"], rng) for _ in range(200)}
    assert drawn == {"a", "b", "c"}


def test_probabilities_weight_values(tmp_path):
    spec = program_spec(tmp_path, {"opt": {"values": ["adam", "sgd"], "probabilities": [0.9, 0.1]}})
    rng = np.random.default_rng(3)
    share = np.mean([sample(spec.parameters["opt"], rng) == "adam" for _ in range(4000)])
    assert 0.88 < share < 0.92


def test_bayes_suggestions_stay_within_bounds(all_distributions):
    spec = all_distributions.model_copy(update={"method": "bayes"})
    space = param_distributions(spec)
    assert set(space) == set(DISTRIBUTIONS) - {"constant"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(300):
        trial = study.ask()
        params = suggest(trial, spec)
        study.tell(trial, 0.0)
        assert params["constant"] == 3
        assert params["categorical"] in ("a", "b", "c")
        for name, ((low, high), ints) in EXPECTED.items():
            if name in ("normal", "q_normal"):
                low, high = (-1, 11) if name == "normal" else (-9, 9)  # mu +- 3 sigma
            if name in ("log_normal", "q_log_normal"):
                mu, sigma = (0, 1) if name == "log_normal" else (2, 0.5)
                low, high = math.exp(mu - 3 * sigma) - 0.5, math.exp(mu + 3 * sigma)
            assert low - 1e-12 <= params[name] <= high + 1e-12, (name, params[name])
            assert isinstance(params[name], int) == ints, name


def test_grid_is_the_product_in_spec_order(tmp_path):
    spec = program_spec(
        tmp_path,
        {
            "opt": {"values": ["adam", "sgd", "lion"]},
            "layers": {"min": 1, "max": 4},
            "dropout": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25},
            "epochs": {"value": 2},
        },
        method="grid",
        run_cap=None,
    )
    assert grid_values(spec.parameters["dropout"]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    trials = expand(spec)
    assert len(trials) == 3 * 4 * 5
    assert [t.index for t in trials] == list(range(60))
    assert trials[0].params == {"opt": "adam", "layers": 1, "dropout": 0.0, "epochs": 2}
    assert trials[1].params["dropout"] == 0.25  # the last parameter varies fastest
    assert trials[-1].params == {"opt": "lion", "layers": 4, "dropout": 1.0, "epochs": 2}
    assert len({json.dumps(t.params) for t in trials}) == 60


def test_seeds_multiply_and_run_cap_truncates(tmp_path):
    base = {"method": "grid", "program": "train.py", "parameters": {"x": {"values": [1, 2, 3]}}}
    spec = load_spec(write_spec(tmp_path, base | {"seeds": 2}))
    assert spec.seeds == [0, 1]
    trials = expand(spec)
    assert [(t.params["x"], t.seed) for t in trials] == [
        (1, 0),
        (1, 1),
        (2, 0),
        (2, 1),
        (3, 0),
        (3, 1),
    ]
    assert trials[1].params == {"x": 1, "seed": 1}
    assert trials[1].overrides == {"x": 1, "seed": 1}  # a user's program gets the seed as a param
    capped = expand(load_spec(write_spec(tmp_path, base | {"seeds": [7, 9], "run_cap": 4})))
    assert [(t.params["x"], t.seed) for t in capped] == [(1, 7), (1, 9), (2, 7), (2, 9)]


def test_random_draws_run_cap_configs_over_seeds(tmp_path):
    spec = program_spec(tmp_path, {"x": {"min": 0.0, "max": 1.0}}, run_cap=5, seeds=2)
    trials = expand(spec)
    assert len(trials) == 5
    assert trials[0].params["x"] == trials[1].params["x"] != trials[2].params["x"]


def test_plans_are_deterministic(tmp_path):
    params = {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1}}
    first = expand(program_spec(tmp_path, params, run_cap=6))
    again = expand(program_spec(tmp_path, params, run_cap=6))
    assert first == again
    reseeded = expand(program_spec(tmp_path, params, run_cap=6, optuna={"seed": 1}))
    assert [t.params for t in reseeded] != [t.params for t in first]


def test_ablation_plan(tmp_path):
    spec = load_spec(ROOT / "sweeps" / "ablations.yaml")
    trials = expand(spec)
    assert len(trials) == (1 + 4) * 2
    assert [t.ablation for t in trials[::2]] == [
        "baseline",
        "no_rmsnorm",
        "post_norm",
        "nope",
        "silu_ffn",
    ]
    assert trials[2].params == {"ablation": "no_rmsnorm", "seed": 0}
    assert trials[3].overrides["model.norm"] == "none"
    assert trials[3].overrides["model.ffn"] == "swiglu"  # from the baseline
    assert trials[3].overrides["train.seed"] == 1
    assert trials[0].overrides["model.norm"] == "rmsnorm"


def test_trainer_overrides_order(tmp_path):
    path = write_spec(
        tmp_path,
        {
            "method": "grid",
            "trainer": {"optimizer.lr": 0.5, "train.max_steps": 9},
            "parameters": {"optimizer.lr": {"values": [0.1]}},
        },
    )
    spec = load_spec(path)
    assert trainer_overrides(spec, {"optimizer.lr": 0.2}, 3) == {
        "optimizer.lr": 0.2,
        "train.max_steps": 9,
        "train.seed": 3,
    }


def test_overrides_on_the_command_line(tmp_path):
    lr = ROOT / "sweeps" / "lr.yaml"
    overrides = [
        "run_cap=4",
        "trainer.train.max_steps=50",
        "parameters.optimizer.lr.values=[1e-3,3e-3]",
    ]
    spec = load_spec(lr, overrides)
    trials = expand(spec)
    assert [t.params["optimizer.lr"] for t in trials] == [1e-3, 3e-3]
    assert all(t.overrides["train.max_steps"] == 50 for t in trials)
    assert spec.run_cap == 4
    assert spec.spec_hash != load_spec(lr).spec_hash


def test_samplers_and_pruners(tmp_path):
    params = {"optimizer.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}}
    spec = {"method": "bayes", "metric": {"name": "val_loss"}, "run_cap": 4, "parameters": params}
    kinds = {"tpe": "TPESampler", "cmaes": "CmaEsSampler", "gp": "GPSampler"}
    kinds |= {"qmc": "QMCSampler", "random": "RandomSampler"}
    for name, cls in kinds.items():
        loaded = load_spec(write_spec(tmp_path, spec | {"optuna": {"sampler": name}}))
        assert type(make_sampler(loaded)).__name__ == cls
    assert type(make_pruner(load_spec(write_spec(tmp_path, spec)))).__name__ == "NopPruner"

    hyperband = spec | {"early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2}}
    pruner = make_pruner(load_spec(write_spec(tmp_path, hyperband)))
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    every = load_config("tiny").train.eval_every  # a W&B iteration is one evaluation
    assert (pruner._min_resource, pruner._reduction_factor) == (2 * every, 2)
    by_max = spec | {"early_terminate": {"type": "hyperband", "max_iter": 27, "s": 2}}
    pruner = make_pruner(load_spec(write_spec(tmp_path, by_max)))
    expected = (3 * every, 27 * every, 3)
    assert (pruner._min_resource, pruner._max_resource, pruner._reduction_factor) == expected
    (tmp_path / "my_module.py").write_text("def train(config, report, checkpoint_dir): ...\n")
    program = by_max | {"program": "my_module:train"}  # any other program: one step each
    pruner = make_pruner(load_spec(write_spec(tmp_path, program)))
    assert (pruner._min_resource, pruner._max_resource) == (3, 27)
    median = spec | {"optuna": {"pruner": "median", "pruner_options": {"n_startup_trials": 2}}}
    pruner = make_pruner(load_spec(write_spec(tmp_path, median)))
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    assert pruner._n_startup_trials == 2
    sha = make_pruner(load_spec(write_spec(tmp_path, spec | {"optuna": {"pruner": "sha"}})))
    assert isinstance(sha, optuna.pruners.SuccessiveHalvingPruner)


def test_seeded_sampler_repeats_its_suggestions(tmp_path):
    params = {"optimizer.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}}
    spec = load_spec(
        write_spec(
            tmp_path,
            {"method": "bayes", "metric": {"name": "val_loss"}, "run_cap": 3, "parameters": params},
        )
    )

    def three():
        study = optuna.create_study(sampler=make_sampler(spec))
        return [suggest(study.ask(), spec)["optimizer.lr"] for _ in range(3)]

    assert three() == three()


def test_wandb_sweep_config_loads_unchanged(tmp_path):
    config = {
        "program": "train.py",
        "method": "bayes",
        "project": "demo",
        "entity": "me",
        "controller": {"type": "local"},
        "metric": {"name": "val/acc", "goal": "maximize"},
        "run_cap": 10,
        "command": [
            "${env}",
            "${interpreter}",
            "${program}",
            "${args_no_hyphens}",
            "${envvar:HOME}",
        ],
        "parameters": {
            "optimizer": {
                "parameters": {"lr": {"min": 0.0001, "max": 0.1}, "name": {"value": "adam"}}
            },
            "epochs": {"distribution": "q_log_uniform_values", "min": 1, "max": 20, "q": 1},
        },
        "early_terminate": {"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3},
    }
    spec = load_spec(write_spec(tmp_path, config))
    assert isinstance(spec.trial_program, ScriptProgram)
    assert (spec.wandb.project, spec.wandb.entity, spec.wandb.mode) == ("demo", "me", "offline")
    assert set(spec.parameters) == {"optimizer.lr", "optimizer.name", "epochs"}
    assert spec.param_paths["optimizer.lr"] == ("optimizer", "lr")
    assert spec.optuna.pruner == "hyperband"
    assert set(param_distributions(spec)) == {"optimizer.lr", "epochs"}


def test_base_file_is_resolved_next_to_the_spec(tmp_path):
    from trainer.config import PRESET_DIR

    (tmp_path / "mine.yaml").write_text((PRESET_DIR / "tiny.yaml").read_text())
    spec = {
        "method": "grid",
        "base": "mine.yaml",
        "parameters": {"optimizer.lr": {"values": [0.1]}},
    }
    loaded = load_spec(write_spec(tmp_path, spec))
    assert loaded.base == str((tmp_path / "mine.yaml").resolve())


def test_shipped_sweeps_exist():
    names = {p.name for p in SWEEPS}
    assert names >= {"lr.yaml", "heads.yaml", "batch_size.yaml", "ablations.yaml", "tpe.yaml"}
    assert "wandb_example.yaml" in names


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_sweep_plans_cleanly(path, capsys):
    assert cli.main(["plan", str(path)]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert path.stem in out.out
    assert cli.main(["plan", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    spec = load_spec(path)
    assert plan["spec"]["name"] == spec.name
    assert [t["index"] for t in plan["trials"]] == list(range(len(expand(spec))))
    assert all(
        set(t) == {"index", "params", "seed", "ablation", "overrides"} for t in plan["trials"]
    )
    assert (plan["search_space"] is not None) == (spec.method == "bayes")


def test_shipped_sweeps_say_what_the_issue_asks():
    lr = load_spec(SWEEPS[0].parent / "lr.yaml")
    rates = [t.params["optimizer.lr"] for t in expand(lr)]
    assert lr.method == "grid" and 5 <= len(rates) <= 8 and max(rates) >= 100 and min(rates) <= 1e-4
    tpe = load_spec(SWEEPS[0].parent / "tpe.yaml")
    assert tpe.method == "bayes" and tpe.optuna.pruner == "hyperband" and tpe.run_cap <= 10
    example = SWEEPS[0].parent / "wandb_example.yaml"
    wandb_keys = {"name", "description", "method", "metric", "run_cap", "parameters", "command"}
    wandb_keys |= {"program", "early_terminate", "project", "entity"}
    assert set(yaml.safe_load(example.read_text())) <= wandb_keys
    assert isinstance(load_spec(example).trial_program, TrainerProgram)
    for path in SWEEPS:
        spec = load_spec(path)
        assert spec.base == "tiny" and spec.metric.name == "val_loss"
