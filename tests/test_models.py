"""The scaling models recover the parameters of synthetic curves, and say so in words."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.analysis import models

W = np.arange(1, 65)


def noisy(values: np.ndarray, seed: int = 0, rel: float = 0.01) -> np.ndarray:
    return values * (1 + rel * np.random.default_rng(seed).standard_normal(len(values)))


def test_amdahl_fit_recovers_serial_fraction():
    w = np.repeat([1, 2, 4, 8, 16, 32, 64], 3)
    fit = models.fit(models.AMDAHL, w, noisy(models.amdahl(w, 0.1)))
    assert fit.params["f"] == pytest.approx(0.1, abs=0.005)
    assert fit.errors["f"] < 0.01
    assert not fit.poor


def test_usl_fit_recovers_sigma_and_kappa():
    fit = models.fit(models.USL, W, noisy(models.usl(W, 0.05, 0.002), rel=0.005))
    assert fit.params["sigma"] == pytest.approx(0.05, abs=0.01)
    assert fit.params["kappa"] == pytest.approx(0.002, rel=0.15)
    assert fit.r2 > 0.98
    assert models.usl_peak(0.05, 0.002) == pytest.approx(math.sqrt(0.95 / 0.002))
    assert models.usl_peak(0.05, 0.0) == math.inf


def test_karp_flatt_on_exact_amdahl_is_f():
    e = models.karp_flatt(W, models.amdahl(W, 0.1))
    assert math.isnan(e[0])
    assert np.allclose(e[1:], 0.1)


def test_gustafson_fit():
    w = np.array([1, 2, 4, 8, 16])
    fit = models.fit(models.GUSTAFSON, w, noisy(models.gustafson(w, 0.2), seed=4))
    assert fit.params["alpha"] == pytest.approx(0.2, abs=0.03)


def test_too_few_worker_counts_are_not_identifiable():
    w = np.array([1, 1, 2, 2])
    assert models.fit(models.AMDAHL, w, models.amdahl(w, 0.1)) is None
    w3 = np.array([1, 2, 4])
    assert models.fit(models.AMDAHL, w3, models.amdahl(w3, 0.1)) is not None
    assert models.fit(models.USL, w3, models.usl(w3, 0.1, 0.01)) is None


def _points(strategy: str, w: np.ndarray, s: np.ndarray) -> pd.DataFrame:
    base = pd.DataFrame({"strategy": "sequential", "saving": True, "workers": 1,
                         "speedup": [1.0, 1.0, 1.0]})
    series = pd.DataFrame({"strategy": strategy, "saving": True, "workers": w, "speedup": s})
    return pd.concat([base, series])


def test_sentences_name_the_dominant_cost():
    w = np.repeat([2, 4, 8, 16, 32, 64], 2)
    contention = models.fit_series(_points("P_1", w, noisy(models.usl(w, 0.12, 0.0))), "strong")[0]
    assert "contention σ=0.1" in contention.sentence
    assert "not to coordination" in contention.sentence
    coherency = models.fit_series(_points("P_1", w, noisy(models.usl(w, 0.01, 0.003))), "strong")[0]
    assert "coherency" in coherency.sentence and "peaks" in coherency.sentence


def test_sentence_for_too_few_points_gives_no_numbers():
    points = _points("P_Q", np.array([2, 2]), np.array([1.5, 1.6]))
    series = models.fit_series(points, "strong")[0]
    assert "not identifiable" in series.sentence
    assert "σ" not in series.sentence and "f=" not in series.sentence


def test_sentence_for_a_poor_fit():
    w = np.repeat([2, 4, 8], 3)
    s = np.array([1.9, 1.9, 1.9, 0.6, 0.6, 0.6, 3.0, 3.0, 3.0])
    series = models.fit_series(_points("P_2", w, s), "strong")[0]
    assert "poor" in series.sentence
    assert series.oversubscribed_from is None and "outnumber" not in series.sentence


def test_oversubscription_comes_from_the_cells_given():
    """fit_series does not judge oversubscription itself: the checks' cells say where it starts."""
    w = np.repeat([2, 4, 8], 3)
    s = np.array([1.9, 1.9, 1.9, 0.6, 0.6, 0.6, 3.0, 3.0, 3.0])
    over = {("P_2", True, 8), ("P_2", False, 4)}  # the no-saving cell belongs to another series
    series = models.fit_series(_points("P_2", w, s), "strong", over)[0]
    assert series.oversubscribed_from == 8
    assert "from W=8 the processes outnumber the cores" in series.sentence
    assert series.label == "P_2 (saving)"
