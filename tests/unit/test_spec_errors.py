"""Malformed specs: each gives exactly the expected lines on stderr and exit code 2.

Expected lines start with "F" for the spec file's path. The specs target the shared trainer
(no `program:`), so parameter keys and values are checked against `trainer.config`.
"""

import textwrap

import pytest

from orchestrator import cli

CASES = [
    # --- YAML and the file itself
    (
        "yaml_syntax",
        "method: grid\nparameters:\n  optimizer.lr: {values: [1e-3\n",
        [],
        ["F:4:1: YAML syntax error: expected ',' or ']', but got '<stream end>'"],
    ),
    (
        "yaml_bad_indent",
        "method: grid\n  run_cap: 3\n",
        [],
        ["F:2:10: YAML syntax error: mapping values are not allowed here"],
    ),
    ("empty_file", "", [], ["F:1: the spec must be a mapping of keys (got an empty file)"]),
    (
        "top_level_list",
        "- method: grid\n",
        [],
        ["F:1: the spec must be a mapping of keys (got a list)"],
    ),
    (
        "duplicate_key",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\n  optimizer.lr: {values: [0.2]}\n",
        [],
        ["F:4: parameters.optimizer.lr: duplicate key (first at line 3)"],
    ),
    # --- top-level keys
    (
        "unknown_key",
        "method: grid\nrun_cpa: 4\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F:2: run_cpa: unknown key; did you mean 'run_cap'?"],
    ),
    (
        "method_missing",
        "parameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F: method: required"],
    ),
    (
        "method_typo",
        "method: gird\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        [
            "F:1: method: must be one of grid, random, bayes, ablation (got 'gird'); did you mean 'grid'?"
        ],
    ),
    (
        "internal_field",
        "method: grid\nspec_hash: abc\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F:2: spec_hash: unknown key"],
    ),
    (
        "bad_name",
        "name: my sweep\nmethod: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F:1: name: 'my sweep' must be letters, digits, '_', '.', '-' (it names a folder)"],
    ),
    (
        "metric_goal_and_name",
        "method: grid\nmetric: {goal: minimise}\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        [
            "F:2: metric.name: required",
            "F:2: metric.goal: must be one of minimize, maximize (got 'minimise'); did you mean 'minimize'?",
        ],
    ),
    (
        "run_cap_zero",
        "method: grid\nrun_cap: 0\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F:2: run_cap: must be > 0 (got 0)"],
    ),
    (
        "run_cap_string",
        "method: grid\nrun_cap: four\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F:2: run_cap: must be an integer (got 'four')"],
    ),
    (
        "random_without_run_cap",
        "method: random\nparameters:\n  optimizer.lr: {min: 0.001, max: 0.1}\n",
        [],
        ["F: run_cap: method random needs run_cap (how many trials to run)"],
    ),
    (
        "bayes_without_metric",
        "method: bayes\nrun_cap: 4\nparameters:\n  optimizer.lr: {min: 0.001, max: 0.1}\n",
        [],
        ["F: metric: method bayes needs a metric, e.g. {name: val_loss, goal: minimize}"],
    ),
    (
        "random_without_parameters",
        "method: random\nrun_cap: 2\n",
        [],
        ["F: parameters: method random needs at least one parameter"],
    ),
    (
        "seeds_zero",
        "method: grid\nseeds: 0\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F:2: seeds: a count of seeds must be at least 1 (got 0)"],
    ),
    (
        "seeds_twice",
        "method: grid\nseeds: [1, 1]\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F:2: seeds: lists a seed twice"],
    ),
    (
        "bayes_two_seeds",
        "method: bayes\nmetric: {name: val_loss}\nrun_cap: 3\nseeds: 2\n"
        "parameters:\n  optimizer.lr: {min: 0.001, max: 0.1}\n",
        [],
        ["F:4: seeds: bayes runs one seed per trial; give one seed"],
    ),
    (
        "seeds_wrong_type",
        "method: grid\nseeds: true\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F:2: seeds: must be a count or a list of integers (got true)"],
    ),
    # --- parameters
    (
        "min_above_max",
        "method: random\nrun_cap: 2\nparameters:\n  optimizer:\n    parameters:\n"
        "      lr:\n        min: 0.1\n        max: 0.001\n",
        [],
        ["F:6: parameters.optimizer.lr: min (0.1) must be less than max (0.001)"],
    ),
    (
        "empty_values",
        "method: grid\nparameters:\n  optimizer.lr: {values: []}\n",
        [],
        ["F:3: parameters.optimizer.lr: values must not be empty"],
    ),
    (
        "repeated_value",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1, 0.2, 0.1]}\n",
        [],
        ["F:3: parameters.optimizer.lr: values lists 0.1 twice"],
    ),
    (
        "probabilities_length",
        "method: random\nrun_cap: 2\nparameters:\n  model.norm:\n"
        "    values: [rmsnorm, layernorm]\n    probabilities: [0.5]\n",
        [],
        ["F:4: parameters.model.norm: 1 probabilities for 2 values"],
    ),
    (
        "probabilities_sum",
        "method: random\nrun_cap: 2\nparameters:\n  model.ffn:\n"
        "    values: [swiglu, silu]\n    probabilities: [0.5, 0.6]\n",
        [],
        ["F:4: parameters.model.ffn: probabilities sum to 1.1, not 1"],
    ),
    (
        "probabilities_negative",
        "method: random\nrun_cap: 2\nparameters:\n  model.positions:\n"
        "    values: [rope, nope]\n    probabilities: [1.5, -0.5]\n",
        [],
        ["F:4: parameters.model.positions: probabilities must not be negative"],
    ),
    (
        "unknown_distribution",
        "method: random\nrun_cap: 2\nparameters:\n"
        "  optimizer.lr: {distribution: log_unifrom_values, min: 0.001, max: 0.1}\n",
        [],
        [
            "F:4: parameters.optimizer.lr: unknown distribution 'log_unifrom_values'; did you mean 'log_uniform_values'?"
        ],
    ),
    (
        "unknown_parameter_key",
        "method: random\nrun_cap: 2\nparameters:\n  model.d_model: {distrbution: int_uniform, min: 32, max: 64}\n",
        [],
        ["F:4: parameters.model.d_model.distrbution: unknown key; did you mean 'distribution'?"],
    ),
    (
        "grid_over_continuous",
        "method: grid\nparameters:\n  optimizer.lr: {distribution: uniform, min: 0.001, max: 0.1}\n",
        [],
        [
            "F:3: parameters.optimizer.lr: a grid needs discrete values, but uniform is continuous (use values:, int_uniform or q_uniform)"
        ],
    ),
    (
        "grid_with_probabilities",
        "method: grid\nparameters:\n  model.norm:\n    values: [rmsnorm, none]\n    probabilities: [0.5, 0.5]\n",
        [],
        ["F:5: parameters.model.norm.probabilities: has no meaning in a grid"],
    ),
    (
        "value_and_values",
        "method: grid\nparameters:\n  optimizer.lr: {value: 0.1, values: [0.1]}\n",
        [],
        ["F:3: parameters.optimizer.lr: give value or values, not both"],
    ),
    (
        "int_uniform_float_bound",
        "method: random\nrun_cap: 2\nparameters:\n  model.num_layers: {distribution: int_uniform, min: 1.5, max: 3}\n",
        [],
        ["F:4: parameters.model.num_layers: min must be an integer for int_uniform (got 1.5)"],
    ),
    (
        "log_uniform_values_zero",
        "method: random\nrun_cap: 2\nparameters:\n  optimizer.lr: {distribution: log_uniform_values, min: 0, max: 0.1}\n",
        [],
        [
            "F:4: parameters.optimizer.lr: min (0) must be > 0 for log_uniform_values (bounds are values, not exponents)"
        ],
    ),
    (
        "log_uniform_looks_like_values",
        "method: random\nrun_cap: 2\nparameters:\n  optimizer.lr: {distribution: log_uniform, min: 1e-5, max: 1e-1}\n",
        [],
        [
            "F:4: parameters.optimizer.lr: log_uniform bounds are natural-log exponents (values from exp(1e-05) to exp(0.1)); for values between 1e-05 and 0.1 use log_uniform_values"
        ],
    ),
    (
        "negative_sigma",
        "method: random\nrun_cap: 2\nparameters:\n  optimizer.beta1: {distribution: normal, mu: 0.9, sigma: -1}\n",
        [],
        ["F:4: parameters.optimizer.beta1: sigma must be > 0 (got -1)"],
    ),
    (
        "no_multiple_of_q",
        "method: random\nrun_cap: 2\nparameters:\n  optimizer.lr: {distribution: q_uniform, min: 0.1, max: 0.2, q: 1.0}\n",
        [],
        ["F:4: parameters.optimizer.lr: no multiple of q (1.0) lies between min and max"],
    ),
    (
        "key_foreign_to_distribution",
        "method: random\nrun_cap: 2\nparameters:\n  optimizer.lr: {distribution: uniform, min: 0, max: 1, mu: 0}\n",
        [],
        ["F:4: parameters.optimizer.lr: mu has no meaning for uniform (it takes min, max)"],
    ),
    (
        "min_without_max",
        "method: random\nrun_cap: 2\nparameters:\n  model.num_layers: {min: 1}\n",
        [],
        ["F:4: parameters.model.num_layers: needs max as well"],
    ),
    (
        "empty_parameter",
        "method: random\nrun_cap: 2\nparameters:\n  model.num_layers: {}\n",
        [],
        ["F:4: parameters.model.num_layers: needs value, values, min and max, or a distribution"],
    ),
    (
        "parameter_not_a_mapping",
        "method: grid\nparameters:\n  train.batch_size: 16\n",
        [],
        [
            "F:3: parameters.train.batch_size: must be a mapping such as {value: 16} or {values: [...]}"
        ],
    ),
    (
        "defined_nested_and_dotted",
        "method: grid\nparameters:\n  optimizer:\n    parameters:\n      lr: {values: [0.1]}\n"
        "  optimizer.lr: {values: [0.2]}\n",
        [],
        ["F:6: parameters.optimizer.lr: optimizer.lr is defined twice, nested and dotted"],
    ),
    (
        "bayes_list_values",
        "method: bayes\nprogram: train.py\nmetric: {name: val_loss}\nrun_cap: 2\n"
        "parameters:\n  layers: {values: [[1, 2]]}\n",
        [],
        [
            "F:6: parameters.layers.values: bayes (Optuna) needs plain values: numbers, strings, booleans or null"
        ],
    ),
    (
        "grid_too_big",
        "method: grid\nparameters:\n  model.num_layers: {min: 1, max: 100000000}\n",
        [],
        [
            "F:2: parameters: the grid has 100,000,000 points, more than 100,000 (use method: random with run_cap)"
        ],
    ),
    # --- against the trainer's config
    (
        "trainer_value_not_plain",
        "method: ablation\nablations:\n  z: {model.norm: [none]}\n",
        [],
        ["F:3: ablations.z.model.norm: must be a plain value for the trainer (got ['none'])"],
    ),
    (
        "parameter_not_a_trainer_key",
        "method: grid\nparameters:\n  model.num_head: {values: [1, 2]}\n",
        [],
        [
            "F:3: parameters.model.num_head: not a key of the trainer config; did you mean 'model.num_heads'?"
        ],
    ),
    (
        "bare_leaf_key",
        "method: grid\nparameters:\n  lr: {values: [0.1]}\n",
        [],
        ["F:3: parameters.lr: not a key of the trainer config; did you mean 'optimizer.lr'?"],
    ),
    (
        "bad_choice",
        "method: grid\nparameters:\n  model.norm:\n    values:\n      - rmsnorm\n      - batchnorm\n",
        [],
        [
            "F:6: parameters.model.norm.values[1]: 'batchnorm' is not one of rmsnorm, layernorm, none (did you mean 'layernorm'?)"
        ],
    ),
    (
        "float_distribution_on_int_key",
        "method: random\nrun_cap: 2\nparameters:\n  model.num_heads: {distribution: uniform, min: 1, max: 8}\n",
        [],
        [
            "F:4: parameters.model.num_heads: is an integer, but uniform gives floats (use values:, int_uniform, or a q_ distribution with an integer q)"
        ],
    ),
    (
        "numbers_for_string_key",
        "method: random\nrun_cap: 2\nparameters:\n  model.norm: {min: 1, max: 3}\n",
        [],
        [
            "F:4: parameters.model.norm: takes str values, but int_uniform gives numbers (use values: [...])"
        ],
    ),
    (
        "value_out_of_range",
        "method: grid\nparameters:\n  train.batch_size: {values: [8, 0]}\n",
        [],
        ["F:3: parameters.train.batch_size.values[1]: must be > 0, got 0"],
    ),
    (
        "trainer_keys_and_values",
        "method: grid\ntrainer:\n  train:\n    seed: 3\n    max_steps: many\n    max_step: 4\n"
        "parameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        [
            "F:4: trainer.train.seed: is set per trial from seeds:; write seeds: [N] instead",
            "F:5: trainer.train.max_steps: expected int, got 'many'",
            "F:6: trainer.train.max_step: not a key of the trainer config; did you mean 'train.max_steps'?",
        ],
    ),
    (
        "trainer_key_twice",
        "method: grid\ntrainer:\n  train.max_steps: 5\n  train:\n    max_steps: 6\n"
        "parameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F:4: trainer.train.max_steps: is given twice"],
    ),
    (
        "unknown_preset",
        "method: grid\nbase: tinyy\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        ["F:2: base: unknown preset 'tinyy' (did you mean 'tiny'? or give a path to a .yaml file)"],
    ),
    (
        "combination_fails",
        "method: grid\nparameters:\n  model.d_model: {values: [64, 48]}\n  model.num_heads: {values: [4, 16]}\n",
        [],
        [
            "F:4: parameters.model.num_heads: trial 3 (model.d_model=48, model.num_heads=16): model.num_heads: rope needs an even head size, d_model/num_heads = 3"
        ],
    ),
    # --- ablations
    (
        "baseline_on_grid_without_seeds",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\nbaseline: {model.norm: none}\n",
        [],
        [
            "F:4: baseline: a grid's baseline is the point the others are compared with seed by seed: it needs seeds: 2 or more"
        ],
    ),
    (
        "baseline_on_random",
        "method: random\nrun_cap: 2\nparameters:\n  optimizer.lr: {values: [0.1]}\n"
        "baseline: {optimizer.lr: 0.1}\n",
        [],
        ["F:5: baseline: only applies to method: ablation or grid"],
    ),
    (
        "grid_baseline_not_a_point",
        "method: grid\nseeds: 2\nparameters:\n  optimizer.lr: {values: [0.1, 0.01]}\n"
        "  model.num_heads: {values: [2, 4]}\nbaseline:\n  optimizer.lr: 0.2\n  model.norm: none\n",
        [],
        [
            "F:6: baseline: names no value for model.num_heads (a grid point sets every parameter)",
            "F:7: baseline.optimizer.lr: 0.2 is not a value of the grid (0.1, 0.01)",
            "F:8: baseline.model.norm: not a parameter of the grid; did you mean 'model.num_heads'?",
        ],
    ),
    (
        "ablations_that_change_nothing",
        "method: ablation\nbaseline: {model.norm: rmsnorm}\nablations:\n  same: {model.norm: rmsnorm}\n"
        "  default_ffn: {model.ffn: swiglu}\n  baseline: {model.ffn: silu}\n  empty: {}\n",
        [],
        [
            "F:4: ablations.same: changes nothing (same as baseline)",
            "F:5: ablations.default_ffn: changes nothing (same as baseline)",
            "F:6: ablations.baseline: name must be letters, digits, '_', '-', not baseline",
            "F:7: ablations.empty: changes nothing (same as baseline)",
        ],
    ),
    (
        "ablation_without_ablations",
        "method: ablation\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        [],
        [
            "F: ablations: method ablation needs at least one ablation",
            "F:2: parameters: method ablation runs baseline: and ablations:, not parameters: (fixed values go in trainer: or baseline:)",
        ],
    ),
    (
        "ablation_bad_value",
        "method: ablation\nablations:\n  bn: {model.norm: batchnorm}\n",
        [],
        [
            "F:3: ablations.bn.model.norm: 'batchnorm' is not one of rmsnorm, layernorm, none (did you mean 'layernorm'?)"
        ],
    ),
    # --- optuna, early termination, resources, wandb, command
    (
        "hyperband_incomplete",
        "method: grid\nmetric: {name: val_loss}\nparameters:\n  optimizer.lr: {values: [0.1]}\n"
        "early_terminate: {type: hyperband, eta: 3}\n",
        [],
        ["F:5: early_terminate: hyperband needs min_iter, or max_iter and s"],
    ),
    (
        "early_terminate_without_metric",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\nearly_terminate: {type: hyperband, min_iter: 1}\n",
        [],
        ["F:4: early_terminate: early termination needs a metric to compare trials by"],
    ),
    (
        "sampler_typo",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\noptuna: {sampler: tp}\n",
        [],
        [
            "F:4: optuna.sampler: must be one of tpe, cmaes, gp, qmc, random (got 'tp'); did you mean 'tpe'?"
        ],
    ),
    (
        "sampler_option_unknown",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\noptuna:\n  sampler_options: {n_startup: 3}\n",
        [],
        [
            "F:5: optuna.sampler_options.n_startup: not an option of TPESampler; did you mean 'n_startup_trials'?"
        ],
    ),
    (
        "pruner_option_unknown",
        "method: grid\nmetric: {name: val_loss}\nparameters:\n  optimizer.lr: {values: [0.1]}\n"
        "optuna: {pruner: median, pruner_options: {n_startup: 2}}\n",
        [],
        [
            "F:5: optuna.pruner_options.n_startup: not an option of MedianPruner; did you mean 'n_startup_trials'?"
        ],
    ),
    (
        "resources",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\nresources: {cpus: -1, gpus: 1.5}\n",
        [],
        [
            "F:4: resources.cpus: must be >= 0 (got -1)",
            "F:4: resources.gpus: above 1 must be a whole number (got 1.5)",
        ],
    ),
    (
        "gpus_auto",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\n"
        "resources: {gpus: most, max_per_gpu: 0}\n",
        [],
        [
            "F:4: resources.gpus: must be a number or auto (got 'most')",
            "F:4: resources.max_per_gpu: must be >= 1 (got 0)",
        ],
    ),
    (
        "max_per_gpu_without_auto",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\n"
        "resources: {gpus: 0.5, max_per_gpu: 4}\n",
        [],
        ["F:4: resources.max_per_gpu: is for gpus: auto (a fixed gpus packs itself)"],
    ),
    (
        "wandb",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\nwandb:\n  mode: cloud\n  tags: tag\n",
        [],
        [
            "F:5: wandb.mode: must be one of offline, online, disabled (got 'cloud')",
            "F:6: wandb.tags: must be a list (got 'tag')",
        ],
    ),
    (
        "command_macro",
        "method: grid\nprogram: train.py\ncommand: [python, train.py, '${args_jsn}']\n"
        "parameters:\n  lr: {values: [0.1]}\n",
        [],
        ["F:3: command: unknown macro ${args_jsn}; did you mean '${args_json}'?"],
    ),
    # --- overrides
    (
        "override_unknown_key",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        ["run_cpa=4"],
        ["F: override 'run_cpa=4': unknown key 'run_cpa'; did you mean 'run_cap'?"],
    ),
    (
        "override_bad_value",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        ["run_cap=abc", "seeds=[1,"],
        [
            "F: override 'run_cap=abc': run_cap: must be an integer (got 'abc')",
            "F: override 'seeds=[1,': cannot read the value (expected the node content, but found '<stream end>')",
        ],
    ),
    (
        "override_without_equals",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        ["run_cap"],
        ["F: override 'run_cap': expected key=value"],
    ),
    (
        "override_unknown_trainer_key",
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.1]}\n",
        ["parameters.optimizer.lrr.values=[1]", "trainer.train.max_step=5"],
        [
            "F: override 'parameters.optimizer.lrr.values=[1]': parameters.optimizer.lrr: not a key of the trainer config; did you mean 'optimizer.lr'?",
            "F: override 'trainer.train.max_step=5': trainer.train.max_step: not a key of the trainer config; did you mean 'train.max_steps'?",
        ],
    ),
    # --- several problems at once
    (
        "many_at_once",
        textwrap.dedent(
            """\
            method: grid
            run_cpa: 4
            metric: {name: val_loss, goal: minimise}
            parameters:
              optimizer.lr: {min: 0.1, max: 0.001}
              model.norm: {values: [rmsnorm, batchnorm]}
            wandb: {mode: cloud}
            """
        ),
        [],
        [
            "F:2: run_cpa: unknown key; did you mean 'run_cap'?",
            "F:3: metric.goal: must be one of minimize, maximize (got 'minimise'); did you mean 'minimize'?",
            "F:5: parameters.optimizer.lr: min (0.1) must be less than max (0.001)",
            "F:6: parameters.model.norm.values[1]: 'batchnorm' is not one of rmsnorm, layernorm, none (did you mean 'layernorm'?)",
            "F:7: wandb.mode: must be one of offline, online, disabled (got 'cloud')",
        ],
    ),
    # --- several metrics (a multi-objective study)
    (
        "metrics_one",
        "method: bayes\nmetrics: [{name: val_loss}]\nrun_cap: 4\nparameters:\n  optimizer.lr: {min: 0.001, max: 0.1}\n",
        [],
        ["F:2: metrics: needs at least 2 metrics (got 1); for one, use metric:"],
    ),
    (
        "metrics_same_name_twice",
        "method: bayes\nmetrics:\n  - {name: val_loss}\n  - {name: val_loss, goal: maximize}\nrun_cap: 4\nparameters:\n  optimizer.lr: {min: 0.001, max: 0.1}\n",
        [],
        ["F:2: metrics: names val_loss twice"],
    ),
    (
        "metric_beside_other_metrics",
        "method: bayes\nmetric: {name: train_loss}\nmetrics:\n  - {name: val_loss}\n  - {name: tokens_per_s, goal: maximize}\nrun_cap: 4\nparameters:\n  optimizer.lr: {min: 0.001, max: 0.1}\n",
        [],
        ["F:2: metric: give metric or metrics, not both (metric would be metrics[0])"],
    ),
    (
        "metrics_with_early_terminate",
        "method: bayes\nmetrics:\n  - {name: val_loss}\n  - {name: tokens_per_s, goal: maximize}\nearly_terminate: {type: hyperband, min_iter: 2}\nrun_cap: 4\nparameters:\n  optimizer.lr: {min: 0.001, max: 0.1}\n",
        [],
        [
            "F:5: early_terminate: Optuna cannot prune a trial with several metrics (a multi-objective study); give one metric, or drop early_terminate"
        ],
    ),
    (
        "metrics_with_pruner",
        "method: bayes\nmetrics:\n  - {name: val_loss}\n  - {name: tokens_per_s, goal: maximize}\noptuna: {pruner: median}\nrun_cap: 4\nparameters:\n  optimizer.lr: {min: 0.001, max: 0.1}\n",
        [],
        [
            "F:5: optuna.pruner: Optuna cannot prune a trial with several metrics (a multi-objective study); give one metric, or drop optuna.pruner: median"
        ],
    ),
    (
        "metrics_with_cmaes",
        "method: bayes\nmetrics:\n  - {name: val_loss}\n  - {name: tokens_per_s, goal: maximize}\noptuna: {sampler: cmaes}\nrun_cap: 4\nparameters:\n  optimizer.lr: {min: 0.001, max: 0.1}\n",
        [],
        [
            "F:5: optuna.sampler: cmaes searches one objective; with several metrics use tpe, gp, qmc or random"
        ],
    ),
    (
        "metrics_name_not_reported",
        "method: bayes\nmetrics:\n  - {name: val_loss}\n  - {name: tokens_per_sec, goal: maximize}\nrun_cap: 4\nparameters:\n  optimizer.lr: {min: 0.001, max: 0.1}\n",
        [],
        [
            "F:4: metrics[1].name: the shared trainer never reports 'tokens_per_sec'; did you mean 'tokens_per_s'?"
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "overrides", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_spec(tmp_path, capsys, text, overrides, expected):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    code = cli.main(["plan", str(path), *overrides])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [str(path) + line[1:] for line in expected]


def test_at_least_forty_cases():
    assert len(CASES) >= 40


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.yaml"
    assert cli.main(["plan", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"{path}: no such file"]
