"""bench.search: its synthetic function keeps its promises (known optimum, biased and noisy
low fidelities that converge at full fidelity) and its search loop counts compute honestly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import search

BEST = {"lr": 10**search.BEST_LOG_LR, "warmup": 0.3, "weight_decay": 0.105, "beta2": 0.9792}


class NoNoise:
    def normal(self) -> float:
        return 0.0


def test_the_stated_optimum_is_the_minimum():
    assert search.final_loss(BEST) == pytest.approx(search.OPTIMUM, abs=1e-6)
    rng = np.random.default_rng(1)
    for _ in range(20_000):
        config = {
            "lr": 10 ** rng.uniform(-4, -1),
            "warmup": rng.uniform(0, 1),
            "weight_decay": rng.uniform(0, 0.3),
            "beta2": rng.uniform(0.9, 0.999),
        }
        assert search.final_loss(config) >= search.OPTIMUM


def test_low_fidelity_is_biased_and_noisy_and_full_fidelity_is_exact():
    rng = np.random.default_rng(0)
    early = [search.lm_surface(BEST, 1 / search.STEPS, rng) for _ in range(200)]
    assert np.std(early) > 0.01  # noisy early
    assert min(early) > search.OPTIMUM + 1  # and far above the final value
    assert search.lm_surface(BEST, 1.0, rng) == search.final_loss(BEST)  # exact at the end
    # Short-horizon bias: early on a 10x higher lr looks better than the best one.
    high = dict(BEST, lr=BEST["lr"] * 10)
    assert search.final_loss(high) > search.final_loss(BEST)
    early_high, early_best = (
        search.lm_surface(c, 3 / search.STEPS, NoNoise()) for c in (high, BEST)
    )
    assert early_high < early_best


def test_random_search_spends_full_trials_and_stops_at_the_budget(tmp_path):
    spec = search.method_spec("random", 0, 10 * search.STEPS, tmp_path)
    run = search.run_search(spec, 10 * search.STEPS, 0)
    assert run.trials == 10 and run.pruned == 0
    assert run.best >= search.OPTIMUM
    assert run.reached_at is None or run.reached_at % search.STEPS == 0


def test_hyperband_prunes_and_a_pruned_trial_costs_only_its_steps(tmp_path, monkeypatch):
    spent: list[int] = []
    real = search.lm_surface

    def counted(config, fidelity, rng):
        spent.append(round(fidelity * search.STEPS))
        return real(config, fidelity, rng)

    monkeypatch.setattr(search, "lm_surface", counted)
    budget = 40 * search.STEPS
    spec = search.method_spec("tpe+hyperband", 0, budget, tmp_path)
    assert spec.optuna.pruner == "hyperband"
    run = search.run_search(spec, budget, 0)
    assert run.pruned > 0
    assert run.trials > 40  # pruned trials are cheaper: more of them fit the budget
    assert budget <= len(spent) < budget + search.STEPS  # one unit per step, no more
    monkeypatch.setattr(search, "lm_surface", real)
    assert search.run_search(spec, budget, 0) == run  # the same brackets, the same draws


def test_grid_runs_its_plan_in_order_and_no_more(tmp_path):
    spec = search.method_spec("grid", 0, 1000 * search.STEPS, tmp_path)
    run = search.run_search(spec, 1000 * search.STEPS, 0)
    assert run.trials == 6 * 3 * 3 * 3  # the whole grid, then it stops
    assert run.best > search.OPTIMUM * (1 + search.THRESHOLD)  # round values miss the 1%


def test_ratio_line_states_bounds_where_a_method_never_got_there():
    medians = {"grid": None, "random": 1000.0, "tpe": 400.0, "tpe+hyperband": None}
    line = search.ratio_line(medians, budget=5000)
    assert line == ("compute to 1% of optimum vs random: grid >5.00, tpe 0.40, tpe+hyperband >5.00")
    assert "tpe <0.08" in search.ratio_line({"random": None, "tpe": 400.0}, budget=5000)
    assert search.median_with_misses([10, 20], 5, 100) is None
    assert search.median_with_misses([10, 20, 30], 5, 100) == 30
    assert math.isfinite(search.median_with_misses([10], 1, 100))
