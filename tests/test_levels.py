"""Where the variance lives (stats/levels.py) on synthetic processes of known levels, and the
dimension file's round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.rundir import dimension_file
from harness.rundir.dimension_file import CellLevels, Dimension, PinnedRun
from harness.stats.levels import Levels, levels


def synthetic(within: float, between: float, drift: float, processes: int = 400, runs: int = 4):
    """Log-normal times: a process effect, a linear drift over the processes, run noise."""
    rng = np.random.default_rng(7)
    at = np.arange(processes, dtype=float)
    slope = drift * np.sqrt(12) / processes  # a line over [0, P) whose SD is `drift`
    effects = rng.normal(0, between, processes) + slope * at
    times = [list(np.exp(e + rng.normal(0, within, runs))) for e in effects]
    return times, list(at)


@pytest.mark.parametrize(
    ("within", "between", "drift"), [(0.01, 0.05, 0.0), (0.05, 0.0, 0.0), (0.01, 0.02, 0.08)]
)
def test_levels_recover_known_components(within, between, drift):
    found = levels(*synthetic(within, between, drift))
    assert found.within == pytest.approx(within, rel=0.1)
    # A level that is absent comes out as the square root of a small noisy difference.
    assert found.between == pytest.approx(between, abs=0.012)
    assert found.drift == pytest.approx(drift, abs=0.012)


def test_runs_per_process_follow_where_the_variance_lives():
    process_bound = Levels(within=0.01, between=0.05, drift=0.0, processes=6, runs=4)
    run_bound = Levels(within=0.05, between=0.0, drift=0.0, processes=6, runs=4)
    assert process_bound.runs_per_process(process_s=1.0, run_s=3.0) == 1
    assert run_bound.runs_per_process(process_s=1.0, run_s=3.0) == 20
    assert Levels(0.05, 0.01, 0.0, 6, 4).runs_per_process(3.0, 3.0) == 5  # sqrt(1 * 25)


def test_too_few_processes_is_an_error():
    with pytest.raises(ValueError, match="two processes"):
        levels([[1.0, 1.1]], [0.0])


def test_the_dimension_file_round_trips_and_refuses_damage(tmp_path):
    found = Dimension(
        config_name="quick_strong",
        processes=6,
        runs=4,
        cells=[CellLevels(cell_id="x", median_s=3.0, within=0.01, between=0.04, drift=0.02,
                          runs_per_process=1)],
        pinned=[PinnedRun(cpu=0, median_s=3.0), PinnedRun(cpu=1, median_s=3.3),
                PinnedRun(cpu=1, median_s=3.3), PinnedRun(cpu=0, median_s=3.0)],
        host={"cpu_model": "test"},
        started_at="2026-12-04T00:00:00+00:00",
        ended_at="2026-12-04T00:05:00+00:00",
    )
    assert dimension_file.read(tmp_path) is None
    dimension_file.write(tmp_path, found)
    assert dimension_file.read(tmp_path) == found
    assert found.cpu_spread() == pytest.approx(0.1)
    assert "between processes 4.0%" in "\n".join(found.lines())
    (tmp_path / dimension_file.FILE).write_text('{"format_version": 1, "cells": ')
    with pytest.raises(HarnessError, match="damaged"):
        dimension_file.read(tmp_path)
    (tmp_path / dimension_file.FILE).write_text(json.dumps({"format_version": 99}))
    with pytest.raises(HarnessError, match="newer augscale"):
        dimension_file.read(tmp_path)
