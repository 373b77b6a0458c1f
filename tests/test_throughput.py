"""Images per second beside speedup and efficiency, and the race's answer to a target rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis.race_answer import feeding
from harness.analysis.results import load_results
from harness.schema import CSV_COLUMNS

FIXTURE = Path(__file__).parent / "fixtures" / "runs" / "quick_strong" / "paired"


def test_images_per_second_is_the_tasks_over_the_median_time_with_its_interval_turned_over():
    results = load_results(FIXTURE)
    table, runs = results.table, results.runs
    tasks = int((runs["n_images"] * runs["augmentations_per_image"]).iloc[0])
    assert np.allclose(table["images_per_s"], tasks / table["time_s"])
    with_ci = table[table["ci_low"].notna()]
    assert len(with_ci)
    assert np.allclose(with_ci["images_per_s_ci_low"], tasks / with_ci["ci_high"])
    assert (with_ci["images_per_s_ci_low"] <= with_ci["images_per_s"]).all()
    assert (with_ci["images_per_s"] <= with_ci["images_per_s_ci_high"]).all()
    assert {"images_per_s", "images_per_s_ci_low", "images_per_s_ci_high"} <= set(CSV_COLUMNS)


def _table() -> pd.DataFrame:
    rows = [
        ("sequential", 1, 100.0, 98.0, 102.0),
        ("P_1", 2, 190.0, 185.0, 195.0),
        ("P_T", 2, 196.0, 180.0, 210.0),
        ("P_1", 4, 240.0, 230.0, 250.0),
    ]
    return pd.DataFrame(
        [
            {"strategy": s, "workers": w, "saving": False, "images_per_s": r,
             "images_per_s_ci_low": lo, "images_per_s_ci_high": hi}
            for s, w, r, lo, hi in rows
        ]
    )


def test_a_target_rate_names_the_fewest_workers_that_feed_it_with_confidence():
    found = feeding(_table(), 182)
    assert found.startswith("P_1 at W = 2 (no saving) feeds 182 images/s")  # P_T's low end: 180
    assert feeding(_table(), 200).startswith("P_1 at W = 4")


def test_a_rate_no_cell_feeds_says_by_how_much_the_best_falls_short():
    found = feeding(_table(), 300)
    assert "cannot feed 300 images/s" in found and "P_1 at W = 4" in found
    assert "20% short" in found
