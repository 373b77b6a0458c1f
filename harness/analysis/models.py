"""Scaling models fitted to the per-run speedups of each strategy and saving mode.

strong: Amdahl S(W) = 1 / (f + (1 - f) / W), serial fraction f;
        USL S(W) = W / (1 + sigma (W - 1) + kappa W (W - 1)), contention sigma, coherency kappa,
        peak at W* = sqrt((1 - sigma) / kappa) when kappa > 0;
        Karp-Flatt e(W) = (1/S - 1/W) / (1 - 1/W), the experimentally determined serial fraction.
weak:   Gustafson S(W) = W - alpha (W - 1) on the scaled speedup E x W, serial fraction alpha.

Every model fixes S(1) = 1, so runs at W = 1 pin no parameter: a model with p parameters is
fitted only with at least p + 1 distinct worker counts above 1, one more than it needs, so the
residuals can say whether it fits at all.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

from harness.analysis.scaling import SAVING_LABEL
from harness.schema import BASELINE

POOR_FIT = 0.10  # residual RMS above 10% of the mean speedup: the model does not describe the data


def amdahl(w: np.ndarray, f: float) -> np.ndarray:
    return 1.0 / (f + (1.0 - f) / np.asarray(w, dtype=float))


def usl(w: np.ndarray, sigma: float, kappa: float) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    return w / (1.0 + sigma * (w - 1.0) + kappa * w * (w - 1.0))


def gustafson(w: np.ndarray, alpha: float) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    return w - alpha * (w - 1.0)


def karp_flatt(w: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Serial fraction implied by each speedup; nan at W = 1, where it is undefined."""
    w, s = np.asarray(w, dtype=float), np.asarray(s, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (1.0 / s - 1.0 / w) / (1.0 - 1.0 / w)
    return np.where(w > 1, e, np.nan)


def usl_peak(sigma: float, kappa: float) -> float:
    """Worker count of the USL's maximum speedup; inf when kappa is 0 (no retrograde part)."""
    if not kappa > 0:
        return math.inf
    return math.sqrt(max(1.0 - sigma, 0.0) / kappa)


@dataclass(frozen=True)
class Model:
    name: str
    fn: Callable[..., np.ndarray]
    params: tuple[str, ...]
    p0: tuple[float, ...]
    bounds: tuple[tuple[float, ...], tuple[float, ...]]


AMDAHL = Model("Amdahl", amdahl, ("f",), (0.1,), ((0.0,), (1.0,)))
USL = Model("USL", usl, ("sigma", "kappa"), (0.05, 0.001), ((0.0, 0.0), (1.0, np.inf)))
GUSTAFSON = Model("Gustafson", gustafson, ("alpha",), (0.1,), ((-np.inf,), (1.0,)))


@dataclass
class Fit:
    model: str
    params: dict[str, float]
    errors: dict[str, float]  # standard errors, from the covariance of the fit
    rel_rmse: float  # residual RMS / mean speedup
    r2: float
    n_points: int

    @property
    def poor(self) -> bool:
        return not self.rel_rmse <= POOR_FIT


def informative_workers(w: np.ndarray) -> list[int]:
    return sorted({int(x) for x in np.asarray(w) if x > 1})


def fit(model: Model, w: np.ndarray, s: np.ndarray) -> Fit | None:
    """Least-squares fit of `model` to (W, speedup) points; None when not identifiable."""
    w, s = np.asarray(w, dtype=float), np.asarray(s, dtype=float)
    keep = np.isfinite(w) & np.isfinite(s)
    w, s = w[keep], s[keep]
    if len(informative_workers(w)) < len(model.params) + 1:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        values, cov = curve_fit(model.fn, w, s, p0=model.p0, bounds=model.bounds, maxfev=20000)
    errors = np.sqrt(np.diag(cov)) if np.all(np.isfinite(cov)) else np.full(len(values), np.nan)
    residual = s - model.fn(w, *values)
    total = np.sum((s - s.mean()) ** 2)
    return Fit(
        model.name,
        dict(zip(model.params, map(float, values), strict=True)),
        dict(zip(model.params, map(float, errors), strict=True)),
        float(np.sqrt(np.mean(residual**2)) / s.mean()),
        float(1 - np.sum(residual**2) / total) if total > 0 else float("nan"),
        len(s),
    )


@dataclass
class SeriesFit:
    """The models of one strategy in one saving mode, and what they mean."""

    strategy: str
    saving: bool
    kind: str
    workers: np.ndarray
    speedups: np.ndarray
    fits: dict[str, Fit] = field(default_factory=dict)
    oversubscribed_from: int | None = None  # first oversubscribed W, if measured
    sentence: str = ""

    @property
    def label(self) -> str:
        return f"{self.strategy} ({SAVING_LABEL[self.saving]})"


def fit_series(
    points: pd.DataFrame, kind: str, oversubscribed: Collection[tuple[str, bool, int]] = ()
) -> list[SeriesFit]:
    """Fit every (strategy, saving) series of analysis.per_run_speedups; the baseline's runs
    join every series as its W = 1 points. oversubscribed: the (strategy, saving, workers) cells
    that ran more busy processes than the usable cores (harness.analysis.checks)."""
    base = points[points["strategy"].eq(BASELINE)]
    others = points[points["strategy"].ne(BASELINE)]
    out = []
    for (strategy, saving), rows in others.groupby(["strategy", "saving"], sort=False):
        rows = pd.concat([base[base["saving"].eq(saving)], rows])
        w, s = rows["workers"].to_numpy(float), rows["speedup"].to_numpy(float)
        series = SeriesFit(strategy, bool(saving), kind, w, s)
        models = (AMDAHL, USL) if kind == "strong" else (GUSTAFSON,)
        series.fits = {m.name: f for m in models if (f := fit(m, w, s)) is not None}
        over = [x for x in informative_workers(w) if (strategy, bool(saving), x) in oversubscribed]
        series.oversubscribed_from = min(over) if over else None
        series.sentence = describe(series)
        out.append(series)
    return out


def karp_flatt_table(table: pd.DataFrame) -> pd.DataFrame:
    """Karp-Flatt serial fraction per cell with W > 1, from the median speedups (strong)."""
    keep = table["strategy"].ne(BASELINE) & table["workers"].gt(1) & table["speedup"].notna()
    rows = table[keep]
    e = karp_flatt(rows["workers"].to_numpy(), rows["speedup"].to_numpy())
    out = rows[["strategy", "saving", "workers", "speedup"]].assign(karp_flatt=e)
    return out.reset_index(drop=True)


def describe(series: SeriesFit) -> str:
    """One sentence: what the fit says about where this strategy's efficiency goes."""
    name, fits = series.label, series.fits
    ws = informative_workers(series.workers)
    main = fits.get("USL") or fits.get("Amdahl") or fits.get("Gustafson")
    if main is None:
        return (
            f"{name}: measured at W = {', '.join(map(str, [1, *ws]))} only; with {len(ws)} "
            "worker count(s) above 1 a scaling model is not identifiable, so no parameters are "
            "given. Add worker counts to fit one."
        )
    if main.poor:
        return (
            f"{name}: the {main.model} fit is poor (residuals {main.rel_rmse:.0%} of the "
            "speedup), so its parameters mean little: " + "; ".join(_misfit_reasons(series)) + "."
        )
    text = _meaning(series, main)
    if series.oversubscribed_from is not None:
        text += (
            f" Points from W = {series.oversubscribed_from} exceed the physical cores, so "
            "the fit also absorbs time-slicing."
        )
    return text


def num(x: float) -> str:
    """Two significant digits; 0 for the round-off a parameter at its bound of 0 comes back
    with."""
    return "0" if abs(x) < 1e-9 else f"{x:.2g}"


def _misfit_reasons(series: SeriesFit) -> list[str]:
    """What in the points a one-resource model cannot follow, from the median speedup per W."""
    medians = pd.Series(series.speedups).groupby(series.workers).median()
    peak_w = int(medians.idxmax())
    top_w = int(medians.index.max())
    reasons = []
    if peak_w < top_w and medians[top_w] < 0.95 * medians[peak_w]:
        amdahl_only = "USL" not in series.fits and series.kind == "strong"
        reasons.append(
            f"the speedup falls after W={peak_w} ({medians[peak_w]:.2f} to "
            f"{medians[top_w]:.2f} at W={top_w})"
            + (", which Amdahl's law cannot show" if amdahl_only else "")
        )
    if series.oversubscribed_from is not None:
        reasons.append(
            f"from W={series.oversubscribed_from} the processes outnumber the cores, so "
            "time-slicing, not the model's costs, sets the speedup"
        )
    if not reasons:
        reasons.append(
            "the runs scatter more than the model allows (interference from other "
            "programs is likely; see the CV column)"
        )
    return reasons


def _meaning(series: SeriesFit, main: Fit) -> str:
    name, p, e = series.label, main.params, main.errors
    if main.model == "Gustafson":
        top = max(informative_workers(series.workers))
        small = p["alpha"] < 0.2
        return (
            f"{name}: Gustafson serial fraction α={p['alpha']:.2f} ±{e['alpha']:.2g} — the "
            f"scaled speedup at W={top} would be {gustafson(top, p['alpha']):.1f} of an ideal "
            f"{top}; "
            + (
                "the part of each run that does not grow with the work is small."
                if small
                else "a sizeable part of each run does not grow with the work (start-up, hand-out, "
                "a shared disk)."
            )
        )
    if main.model == "Amdahl":
        if not p["f"] > 0:
            return (
                f"{name}: Amdahl serial fraction f≈0 — no serial part detectable over these "
                "worker counts."
            )
        usl_note = "" if "USL" in series.fits else " (USL needs 3 or more worker counts above 1)"
        return (
            f"{name}: Amdahl serial fraction f={p['f']:.2f} ±{e['f']:.2g}{usl_note} — as if "
            f"{p['f']:.0%} of the work ran on one process, capping the speedup at "
            f"{1 / p['f']:.1f}."
        )
    sigma, kappa = p["sigma"], p["kappa"]
    top = max(informative_workers(series.workers))
    contention, coherency = sigma * (top - 1), kappa * top * (top - 1)
    figures = f"σ={sigma:.3f} ±{num(e['sigma'])}, κ={num(kappa)} ±{num(e['kappa'])}"
    if contention < 0.02 and coherency < 0.02:
        return (
            f"{name}: {figures} — close to linear scaling up to W={top}; neither contention "
            "nor coherency costs are visible yet."
        )
    if coherency > contention:
        peak = usl_peak(sigma, kappa)
        if peak <= top:
            where = f"at W*≈{peak:.1f}, within the measured range"
        else:
            where = f"at W*≈{peak:.0f}, beyond which more workers make it slower"
        return (
            f"{name}: coherency κ={num(kappa)} dominates ({figures}) — processes lose time "
            "coordinating with each other (pickling, queues, pool bookkeeping), so the speedup "
            f"peaks {where}."
        )
    return (
        f"{name}: contention σ={sigma:.3f} dominates ({figures}) — efficiency is lost to a shared "
        "resource (a serial part, memory bandwidth, the disk), not to coordination; the speedup "
        f"can approach at most 1/σ ≈ {1 / sigma:.1f}{_amdahl_note(series)}."
    )


def _amdahl_note(series: SeriesFit) -> str:
    f = series.fits.get("Amdahl")
    if f is None or f.poor:
        return ""
    return f" (Amdahl's serial fraction f={f.params['f']:.2f})"
