"""harness.stats on samples whose answers are known, and the columns scaling_table gains."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.analysis.scaling import scaling_table
from harness.stats import medians


def test_median_and_cv_of_a_known_sample():
    x = [1.0, 2.0, 3.0, 4.0, 100.0]
    assert medians.median(x) == 3.0
    assert medians.cv([2.0, 4.0, 6.0]) == pytest.approx(0.5)  # std 2 (ddof=1) / mean 4


def test_median_ci_contains_the_true_median():
    rng = np.random.default_rng(1)
    sample = rng.normal(10.0, 0.5, size=40)  # true median 10
    low, high = medians.median_ci(sample)
    assert low < 10.0 < high
    assert high - low < 1.0
    assert low <= medians.median(sample) <= high


def test_median_ci_is_reproducible():
    sample = [1.0, 1.2, 0.9, 1.1, 1.05]
    assert medians.median_ci(sample) == medians.median_ci(sample)


def test_ci_is_nan_below_three_samples():
    for sample in ([], [1.0], [1.0, 2.0]):
        low, high = medians.median_ci(sample)
        assert math.isnan(low) and math.isnan(high)
    low, high = medians.ratio_ci([1.0, 1.1, 0.9], [0.5, 0.6])
    assert math.isnan(low) and math.isnan(high)
    assert not math.isnan(medians.median_ci([1.0, 2.0, 3.0])[0])


def test_ratio_ci_brackets_the_ratio_of_medians():
    rng = np.random.default_rng(2)
    base, cell = 10 * (1 + 0.01 * rng.standard_normal(10)), 5 * (1 + 0.01 * rng.standard_normal(10))
    low, high = medians.ratio_ci(base, cell)
    assert low < 2.0 < high and high - low < 0.1


def test_outliers_by_modified_z_score():
    clean = 10 + 0.1 * np.linspace(-1, 1, 20)
    assert medians.n_outliers(clean) == 0
    assert medians.n_outliers(np.concatenate([clean, [15.0, 3.0]])) == 2
    # MAD 0: the mean absolute deviation instead
    assert medians.n_outliers([1.0, 1.0, 1.0, 1.0, 1.0, 5.0]) == 1
    assert math.isnan(medians.n_outliers([1.0, 1.01, 5.0]))  # too few runs to judge


def test_unstable_flag_at_five_percent():
    assert not medians.summary([1.0, 1.01, 0.99])["unstable"]
    assert medians.summary([1.0, 1.2, 0.8])["unstable"]


def _runs(walls: dict[tuple[str, int], list[float]]) -> pd.DataFrame:
    rows = [
        {"strategy": s, "workers": w, "saving": True, "width": 10, "height": 10, "repeat": r,
         "wall_s": t, "status": "ok", "error": "", "t_read_s": 0.0, "t_augment_s": t * w * 0.9,
         "t_save_s": 0.0}
        for (s, w), ts in walls.items() for r, t in enumerate(ts)
    ]
    return pd.DataFrame(rows)


def test_scaling_table_gains_intervals_from_the_runs():
    runs = _runs({("sequential", 1): [10.0, 10.1, 9.9, 10.05, 9.95],
                  ("P_1", 2): [5.0, 5.1, 4.9, 5.05, 4.95]})
    table = scaling_table(runs, "strong")
    p1 = table[table["strategy"].eq("P_1")].iloc[0]
    assert p1["ci_low"] < p1["time_s"] < p1["ci_high"]
    assert p1["speedup_ci_low"] < p1["speedup"] < p1["speedup_ci_high"]
    assert p1["efficiency_ci_low"] == pytest.approx(p1["speedup_ci_low"] / 2)
    assert p1["utilization"] == pytest.approx(0.9)
    assert not p1["unstable"] and p1["n_outliers"] == 0


def test_weak_intervals_are_efficiency_first():
    runs = _runs({("sequential", 1): [10.0, 10.1, 9.9], ("P_1", 2): [12.0, 12.2, 11.8]})
    p1 = scaling_table(runs, "weak").iloc[1]
    assert p1["efficiency_ci_low"] < p1["efficiency"] < p1["efficiency_ci_high"]
    assert p1["speedup_ci_high"] == pytest.approx(2 * p1["efficiency_ci_high"])


def test_median_ci_takes_its_seed():
    """Every bootstrap of the project goes through stats; a caller may pick its own seed."""
    sample = [1.0, 1.3, 0.9, 1.1, 1.05, 0.95, 1.2]
    assert medians.median_ci(sample, seed=7) == medians.median_ci(sample, seed=7)
    assert medians.median_ci(sample) == medians.median_ci(sample, seed=medians.SEED)
    low, high = medians.median_ci(sample, seed=7)
    assert min(sample) <= low <= medians.median(sample) <= high <= max(sample)
