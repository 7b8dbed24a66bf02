"""Paired statistics of an ablation against its baseline, checked against scipy on known data.

Each expected number is computed here from scipy's distributions directly (the t quantile,
the t test statistic's p-value), not by calling the code under test's own path.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from conftest import write_spec
from scipy import stats

from orchestrator.results.ablation_stats import BOOTSTRAP_FROM, paired_comparison
from orchestrator.results.analysis import Importance, compare, config_groups
from orchestrator.spec import load_spec
from orchestrator.store.results import TrialResult
from orchestrator.tracking.info import ablation_rows

BASELINE = {0: 1.00, 1: 1.10, 2: 0.95, 3: 1.05}
WORSE = {0: 1.52, 1: 1.61, 2: 1.43, 3: 1.58}  # every seed about 0.5 higher


def t_interval(diffs: list[float]) -> tuple[float, float, float]:
    """The mean's 95% t interval and the two-sided p-value of mean 0, from first principles."""
    n = len(diffs)
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    p = 2 * stats.t.sf(abs(mean / (sd / math.sqrt(n))), n - 1)
    return mean - half, mean + half, p


def test_a_clear_effect_is_worse_with_a_ci_that_excludes_zero():
    seeds = list(BASELINE)
    found = paired_comparison(seeds, BASELINE, WORSE, "minimize")
    diffs = [WORSE[s] - BASELINE[s] for s in seeds]
    low, high, p = t_interval(diffs)

    assert found.n_pairs == 4 and found.excluded == 0 and found.ci_method == "t"
    assert found.mean_diff == pytest.approx(statistics.fmean(diffs))
    assert (found.ci_low, found.ci_high) == pytest.approx((low, high))
    assert found.p_value == pytest.approx(p)
    assert found.ci_low > 0 and found.verdict == "worse"
    spread = statistics.stdev(BASELINE.values())
    assert found.effect_sd == pytest.approx(statistics.fmean(diffs) / spread)
    # Higher is better when the goal is maximize; a metric without a goal says which way.
    assert paired_comparison(seeds, BASELINE, WORSE, "maximize").verdict == "better"
    assert paired_comparison(seeds, BASELINE, WORSE, None).verdict == "higher"
    assert paired_comparison(seeds, WORSE, BASELINE, "minimize").verdict == "better"


def test_identical_values_are_not_distinguishable():
    found = paired_comparison(list(BASELINE), BASELINE, dict(BASELINE), "minimize")
    assert found.mean_diff == 0 and (found.ci_low, found.ci_high) == (0, 0)
    assert found.p_value == 1.0
    assert found.verdict == "not distinguishable with 4 seeds"


def test_noise_larger_than_the_effect_is_not_distinguishable():
    noisy = {0: 1.30, 1: 0.90, 2: 1.20, 3: 0.85}  # up and down by seed
    found = paired_comparison(list(BASELINE), BASELINE, noisy, "minimize")
    low, high, p = t_interval([noisy[s] - BASELINE[s] for s in BASELINE])
    assert (found.ci_low, found.ci_high, found.p_value) == pytest.approx((low, high, p))
    assert low < 0 < high and found.verdict == "not distinguishable with 4 seeds"


def test_a_diverged_seed_is_counted_and_left_out_of_the_pairs():
    ablated = {s: v for s, v in WORSE.items() if s != 2}  # seed 2 diverged: no value
    ablated[3] = math.nan  # and a non-finite value pairs with nothing either
    found = paired_comparison(list(BASELINE), BASELINE, ablated, "minimize")
    assert found.n_pairs == 2 and found.excluded == 2
    diffs = [WORSE[s] - BASELINE[s] for s in (0, 1)]
    assert found.mean_diff == pytest.approx(statistics.fmean(diffs))
    assert (found.ci_low, found.ci_high) == pytest.approx(t_interval(diffs)[:2])


def test_fewer_than_two_pairs_says_so_instead_of_computing():
    one = paired_comparison([0, 1], BASELINE, {0: 2.0}, "minimize")
    assert one.verdict == "needs 2+ seeds" and one.n_pairs == 1 and one.excluded == 1
    assert one.mean_diff == pytest.approx(1.0)
    assert (one.ci_low, one.ci_high, one.p_value, one.effect_sd) == (None,) * 4
    none = paired_comparison([0, 1], BASELINE, {}, "minimize")
    assert none.verdict == "needs 2+ seeds" and none.mean_diff is None


def test_enough_seeds_bootstrap_the_interval():
    rng = np.random.default_rng(7)
    seeds = list(range(BOOTSTRAP_FROM))
    baseline = {s: float(rng.normal(1.0, 0.1)) for s in seeds}
    ablated = {s: baseline[s] + float(rng.normal(-0.3, 0.1)) for s in seeds}
    found = paired_comparison(seeds, baseline, ablated, "minimize")
    diffs = np.array([ablated[s] - baseline[s] for s in seeds])
    expected = stats.bootstrap(
        (diffs,), np.mean, confidence_level=0.95, rng=np.random.default_rng(0)
    ).confidence_interval
    assert found.ci_method == "bootstrap"
    assert (found.ci_low, found.ci_high) == pytest.approx((expected.low, expected.high))
    assert found.p_value == pytest.approx(stats.ttest_1samp(diffs, 0).pvalue)
    assert found.ci_high < 0 and found.verdict == "better"


ABLATION = """
    name: abl
    method: ablation
    program: sweep_programs:seeded_loss
    metric: {name: loss, goal: minimize}
    seeds: 3
    baseline: {x: 1.0}
    ablations:
      bigger_x: {x: 3.0}
"""


def test_groups_pair_trials_by_seed_and_count_a_diverged_one(tmp_path):
    spec = load_spec(write_spec(tmp_path, ABLATION))  # plan: baseline x 3 seeds, bigger_x x 3

    def trial(index: int, value: float | None, state: str = "complete") -> TrialResult:
        reason = "diverged" if state == "fail" else None
        metrics = {"accuracy": 1 / (1 + value)} if value is not None else {}
        return TrialResult(index, state, {}, value, value, 3, reason, metrics, plan_index=index)

    base = [1.0, 1.1, 1.3]
    records = [trial(i, v) for i, v in enumerate(base)]
    # bigger_x: seed 0 diverged; seeds 1 and 2 finished in the other order.
    records += [trial(5, 3.4), trial(3, None, "fail"), trial(4, 3.15)]
    groups = config_groups(spec, records, "loss", "minimize")
    assert groups[1].diverged == 1 and groups[1].by_seed["loss"] == {2: 3.4, 1: 3.15}
    found = compare(groups, "loss", "minimize")["bigger_x"]
    loss = found["loss"]
    assert loss.n_pairs == 2 and loss.excluded == 1  # seed 0 counted, not paired
    assert loss.mean_diff == pytest.approx(((3.15 - 1.1) + (3.4 - 1.3)) / 2)
    assert loss.verdict == "worse"
    assert found["accuracy"].verdict == "lower"  # no goal for the other metrics
    assert "diverged" not in found  # a fraction, not a value per seed


def test_ablation_rows_carry_the_comparison_as_columns_of_every_row():
    extra = {"mean": 2.0, "std": 0.1, "ci_low": 1.5, "ci_high": 2.5, "verdict": "worse"}
    rows = ablation_rows(
        "a", {"loss": (1.0, 0.1), "diverged": 0.0}, {"loss": extra, "diverged": 0.5}
    )
    assert [list(r) for r in rows][0] == list(rows[1])  # one set of columns: a table
    assert (rows[0]["ci_low"], rows[0]["verdict"]) == (1.5, "worse")
    assert (rows[1]["ci_low"], rows[1]["verdict"], rows[1]["ablated_mean"]) == (None, None, 0.5)


def test_importance_from_few_trials_carries_a_warning():
    assert "only 3 complete trials" in Importance({"x": 0.9, "y": 0.1}, 3).warning
    assert Importance({"x": 0.9, "y": 0.1}, 40).warning is None
    assert Importance({}, 1, "1 complete trial(s); needs 2").warning is None
