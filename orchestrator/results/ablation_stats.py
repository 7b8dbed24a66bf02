"""Paired statistics of one ablation against the baseline: is the change real, or seed noise?

The baseline and an ablation run the same seeds (seed k: the same initialisation and data
order), so they are compared seed by seed: d_k = ablated_k - baseline_k over the seeds where
both completed with a finite value. A seed that diverged, failed or has not finished on either
side has no pair: it is counted in `excluded` (and shown), never averaged in.

- `mean_diff`: the mean of d_k (the paired delta; over the paired seeds only, so it can differ
  from the difference of the two groups' means when a seed is excluded).
- `ci_low`, `ci_high`: its 95% confidence interval. With fewer than `BOOTSTRAP_FROM` pairs it
  is Student's t interval of the paired t-test (`scipy.stats.ttest_rel`): a bootstrap of a
  handful of values only resamples those values and is too narrow. From `BOOTSTRAP_FROM`
  pairs on, the BCa bootstrap of the mean (`scipy.stats.bootstrap`, seeded so a report is
  reproducible), which does not assume the differences are normal.
- `p_value`: the paired t-test's two-sided p-value (always; 1 when every d_k is 0).
- `effect_sd`: the effect in units of seed-to-seed spread, mean_diff / the sample standard
  deviation of the baseline over the paired seeds ("the change is 3 seed-sds"): how large the
  change is against the noise a user sees between seeds. None when that spread is 0.
- `verdict`: from the confidence interval: "better" or "worse" (lower is better when the goal
  is minimize, higher when maximize; "lower"/"higher" for a metric without a goal) when it
  excludes 0, "not distinguishable with n seeds" when it holds 0, "needs 2+ seeds" with fewer
  than 2 pairs (nothing is computed then but the single delta).
- `seeds_for_power`: for an undecided ablation, the seeds (pairs) a paired t-test would need
  to detect the observed effect with 80% power at the 5% level, taking the observed mean and
  standard deviation of d_k as the truth: the exact power from scipy's noncentral t
  (`stats.nct`), the smallest n reaching it (`POWER_UP_TO` at most; None beyond, or when
  every d_k is equal). A rough guide: the observed effect of a few seeds is itself noisy.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_FROM = 10  # pairs from which the CI is bootstrapped instead of t-based
NEEDS_SEEDS = "needs 2+ seeds"
POWER = 0.8
POWER_UP_TO = 1000  # seeds_for_power searches no further


@dataclass
class PairedComparison:
    """One metric of one ablation against the baseline, seed by seed (module docstring)."""

    n_pairs: int
    excluded: int  # planned seeds without a pair (diverged, failed or unfinished on a side)
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str | None  # "t" or "bootstrap"
    p_value: float | None
    effect_sd: float | None
    verdict: str
    seeds_for_power: int | None = None  # undecided: seeds for 80% power at the observed effect

    @property
    def undecided(self) -> bool:
        """Its CI holds 0, or it has fewer than 2 pairs: more seeds could decide it."""
        return self.verdict == NEEDS_SEEDS or self.verdict.startswith("not distinguishable")

    def columns(self) -> dict[str, float | int | str | None]:
        """Its values as the columns of the ablation's table (wandb, results, report)."""
        return asdict(self)


def paired_comparison(
    seeds: list[int],
    baseline: Mapping[int, float],
    ablated: Mapping[int, float],
    goal: str | None,
) -> PairedComparison:
    """Compare `ablated` with `baseline` (each a seed -> value map of the complete seeds) over
    the planned `seeds` they share; `goal` ("minimize"/"maximize", None for a metric that has
    none) says which direction is better."""
    paired = [
        s
        for s in seeds
        if s in baseline and s in ablated and math.isfinite(baseline[s] + ablated[s])
    ]
    excluded = len(seeds) - len(paired)
    base = np.array([baseline[s] for s in paired], dtype=float)
    diffs = np.array([ablated[s] for s in paired], dtype=float) - base
    if len(paired) < 2:
        delta = float(diffs[0]) if len(paired) else None
        return PairedComparison(
            len(paired), excluded, delta, None, None, None, None, None, NEEDS_SEEDS
        )
    from scipy import stats  # here, not at the top: a sweep's start does not wait for it

    with warnings.catch_warnings():  # near-identical differences: scipy's precision note
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.ttest_rel(base + diffs, base)
        low, high = test.confidence_interval(CONFIDENCE)
        method = "t"
        if len(paired) >= BOOTSTRAP_FROM and np.ptp(diffs) > 0:
            rng = np.random.default_rng(0)
            found = stats.bootstrap((diffs,), np.mean, confidence_level=CONFIDENCE, rng=rng)
            low, high = found.confidence_interval
            method = "bootstrap"
    p_value = 1.0 if not np.any(diffs) else float(test.pvalue)
    mean_diff = float(np.mean(diffs))
    spread = statistics.stdev(base.tolist())
    effect = mean_diff / spread if spread > 0 else None
    verdict = _verdict(float(low), float(high), len(paired), goal)
    found = PairedComparison(
        len(paired), excluded, mean_diff, float(low), float(high), method, p_value, effect, verdict
    )
    if found.undecided:
        found.seeds_for_power = seeds_for_power(mean_diff, float(np.std(diffs, ddof=1)))
    return found


def seeds_for_power(mean_diff: float, sd_diff: float, power: float = POWER) -> int | None:
    """The smallest number of pairs at which a two-sided paired t-test (5% level) detects a
    true mean difference `mean_diff` with this power, the differences' sd being `sd_diff`
    (module docstring); None when there is no effect to detect or it needs > POWER_UP_TO."""
    if not sd_diff > 0 or mean_diff == 0 or not math.isfinite(mean_diff / sd_diff):
        return None
    from scipy import stats

    effect = abs(mean_diff) / sd_diff
    z = stats.norm.ppf(1 - (1 - CONFIDENCE) / 2) + stats.norm.ppf(power)
    start = max(2, int((z / effect) ** 2) - 1)  # the normal approximation, a little below
    for n in range(start, POWER_UP_TO + 1):
        df, ncp = n - 1, effect * math.sqrt(n)
        critical = stats.t.ppf(1 - (1 - CONFIDENCE) / 2, df)
        reached = stats.nct.sf(critical, df, ncp) + stats.nct.cdf(-critical, df, ncp)
        if reached >= power:
            return n
    return None


def power_text(comparison: PairedComparison) -> str:
    """`~9 seeds for 80% power`, or `-` for a decided ablation."""
    if not comparison.undecided or comparison.verdict == NEEDS_SEEDS:
        return "-"
    n = comparison.seeds_for_power
    return f"~{n} seeds" if n else f"> {POWER_UP_TO} seeds"


def _verdict(low: float, high: float, n: int, goal: str | None) -> str:
    if low <= 0 <= high:
        return f"not distinguishable with {n} seeds"
    higher = low > 0
    if goal is None:
        return "higher" if higher else "lower"
    return "worse" if higher == (goal == "minimize") else "better"


def ci_text(low: float | None, high: float | None, digits: str = ".4g") -> str:
    """`[0.83, 3.37]`, or `-` where there is no interval."""
    if low is None or high is None:
        return "-"
    return f"[{low:{digits}}, {high:{digits}}]"


def p_text(p_value: float | None) -> str:
    """A p-value as a person reads it: `0.03`, `<0.001`, `-` where there is none."""
    if p_value is None or math.isnan(p_value):
        return "-"
    return "<0.001" if p_value < 0.001 else f"{p_value:.3g}"
