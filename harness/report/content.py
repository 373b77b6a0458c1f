"""What the report says, independent of its format: tables as rows of strings and sentences.
Strings may carry `code` and **bold**, which markdown keeps and html.py converts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness import checks, reference, stats
from harness.models import num
from harness.report import ReportData

DASH = "—"
MODE = {True: "Saving", False: "No saving"}


@dataclass
class Table:
    head: list[str]
    rows: list[list[str]] = field(default_factory=list)


def fmt(value: float, kind: str = "s") -> str:
    if pd.isna(value):
        return DASH
    if kind == "pct":
        return f"{value * 100:.0f}%"
    return f"{value:.2f}"


def interval(value: float, low: float, high: float, kind: str = "s") -> str:
    """"1.23 [1.20, 1.27]"; the bare value when there is no interval (n < 3)."""
    if pd.isna(value):
        return DASH
    if pd.isna(low):
        return fmt(value, kind)
    return f"{fmt(value, kind)} [{fmt(low, kind)}, {fmt(high, kind)}]"


def marks(data: ReportData) -> pd.Series:
    """Per table row: "†" when oversubscribed, "~" when unstable (CV > 5%)."""
    over = data.oversubscribed.map({True: checks.OVERSUBSCRIBED, False: ""})
    shaky = data.table["unstable"].fillna(False).astype(bool).map({True: checks.UNSTABLE, False: ""})
    return over + shaky


def legend(data: ReportData) -> str:
    return (
        f"{checks.OVERSUBSCRIBED} more busy processes than the {data.cores} usable physical cores (oversubscribed); "
        f"{checks.UNSTABLE} unstable: the repeats vary by more than {stats.UNSTABLE_CV:.0%} (CV). "
        f"Figures are medians of the ok repeats; {DASH} = not run or no ok repeat."
    )


def points(data: ReportData) -> list[tuple[int, tuple[int, int]]]:
    cfg = data.meta["config"]
    if cfg["kind"] == "strong":
        return [(w, tuple(cfg["images"]["size"])) for w in cfg["workers"]]
    return [(p["workers"], tuple(p["size"])) for p in cfg["points"]]


def paper_table(data: ReportData) -> Table:
    """Rows: workers (strong) or image size (weak), grouped by saving mode; columns per strategy."""
    strong = data.kind == "strong"
    names = data.strategies
    metrics = [("Execution time [s]", "time_s", "s")] + ([("Speedup", "speedup", "x")] if strong else []) + [("Efficiency", "efficiency", "pct")]
    head = ["", "Workers" if strong else "Image size", "Ideal execution"] + [f"{title}: {n}" for title, _, _ in metrics for n in names]
    out = Table(head)
    table = data.table.assign(mark=marks(data)).set_index(["strategy", "saving", "workers"])
    for saving in data.meta["config"]["saving"]:
        base = table.loc[("sequential", saving, 1)] if ("sequential", saving, 1) in table.index else None
        label = f"**{MODE[saving]}**"
        if base is not None:
            first = "1 (sequential)" if strong else f"{int(base['width'])}x{int(base['height'])} (sequential)"
            out.rows.append([label, first, fmt(base["time_s"]) + base["mark"]] + [DASH] * (len(head) - 3))
            label = ""
        for workers, (w, h) in points(data):
            ideal = float("nan") if base is None else (base["time_s"] / workers if strong else base["time_s"])
            row = [label, str(workers) if strong else f"{w}x{h}", fmt(ideal)]
            label = ""
            for _, col, kind in metrics:
                for n in names:
                    key = (n, saving, workers)
                    value = table.loc[key, col] if key in table.index else float("nan")
                    row.append(fmt(value, kind) + (table.loc[key, "mark"] if pd.notna(value) else ""))
            out.rows.append(row)
    return out


def detail_table(data: ReportData) -> Table:
    """Every cell with its 95% intervals, spread and outliers."""
    t = data.table.assign(mark=marks(data), processes=data.processes)
    head = ["strategy", "saving", "W", "size", "processes", "ok/runs", "time [s] [95% CI]", "CV", "outliers", "speedup [95% CI]", "efficiency [95% CI]", "utilization", "marks"]
    out = Table(head)
    for r in t.itertuples():
        out.rows.append([
            r.strategy, MODE[bool(r.saving)].lower(), str(r.workers), f"{r.width}x{r.height}", str(r.processes), f"{r.n_ok}/{r.n_runs}",
            interval(r.time_s, r.ci_low, r.ci_high), fmt(r.cv, "pct") if pd.notna(r.cv) else DASH, DASH if pd.isna(r.n_outliers) else str(int(r.n_outliers)),
            interval(r.speedup, r.speedup_ci_low, r.speedup_ci_high), interval(r.efficiency, r.efficiency_ci_low, r.efficiency_ci_high, "pct"),
            fmt(r.utilization, "pct"), r.mark,
        ])
    return out


def phases_table(data: ReportData) -> Table:
    from harness.analysis import phase_columns

    phases = data.phases
    parts = phase_columns(phases)
    extra = [("cores_busy", "cores busy")] if "cores_busy" in phases else []
    extra += [("t_dispatch_s", "main CPU [s]")] if "t_dispatch_s" in phases else []
    extra += [("peak_rss_mb", "peak RSS [MB]")] if "peak_rss_mb" in phases else []
    head = ["strategy", "saving", "W", "wall [s]"] + [f"{label} [s/worker]" for _, label in parts] + ["utilization"] + [label for _, label in extra]
    out = Table(head)
    for _, r in phases.iterrows():
        row = [r["strategy"], MODE[bool(r["saving"])].lower(), str(r["workers"]), fmt(r["wall_s"])]
        row += [f"{r[c]:.3f}" for c, _ in parts] + [fmt(r["utilization"], "pct")]
        row += [_extra_cell(r[c], c) for c, _ in extra]
        out.rows.append(row)
    return out


def _extra_cell(value: float, column: str) -> str:
    if pd.isna(value):
        return DASH
    return f"{value:.0f}" if column == "peak_rss_mb" else f"{value:.2f}" if column == "cores_busy" else f"{value:.3f}"


def phase_notes(data: ReportData) -> list[str]:
    notes = [
        "Each phase is the seconds summed over tasks divided by the workers, averaged over the ok runs; overhead/idle is the rest of the wall time "
        "(pool start-up, pickling and hand-out, waiting). Utilization = (read + augment + save) / (wall x workers).",
        "The phase times are wall-clock per task: with more busy processes than cores (†) they include time spent waiting for a CPU, "
        "so utilization there overstates real CPU use. Cores busy is the real use: CPU seconds of all the run's processes "
        "(getrusage of the cell process and its reaped children) per wall second; it cannot exceed the cores.",
        "Main CPU is the CPU time of the main process during the run: reading where it reads, pickling tasks out and results "
        "back, managing the pool. Pool start-up is the time to create the pool (forking W workers).",
    ]
    if "P_1" in data.strategies or "P_Q" in data.strategies:
        notes.append("P_1 and P_Q read every image in the main process before the pool starts: their read time is serial, spread here over the workers.")
    if "P_Q" in data.strategies:
        notes.append("P_Q: save is the savers' time, queue put the augmenting workers' hand-off to them; W counts augmenters and savers.")
    return notes


def model_table(data: ReportData) -> Table:
    out = Table(["series", "model", "parameters (± standard error)", "residual RMS / mean S", "R²", "runs"])
    for series in data.fits:
        for f in series.fits.values():
            params = ", ".join(f"{_greek(k)}={num(v)} ±{num(f.errors[k])}" for k, v in f.params.items())
            out.rows.append([series.label, f.model, params, f"{f.rel_rmse:.1%}", f"{f.r2:.3f}" if pd.notna(f.r2) else DASH, str(f.n_points)])
    return out


def karp_flatt_table(data: ReportData) -> Table | None:
    kf = data.karp_flatt
    if kf is None or kf.empty:
        return None
    out = Table(["strategy", "saving", "W", "speedup (median)", "Karp–Flatt e(W)"])
    for r in kf.itertuples():
        out.rows.append([r.strategy, MODE[bool(r.saving)].lower(), str(r.workers), fmt(r.speedup), f"{r.karp_flatt:.3f}"])
    return out


def _greek(name: str) -> str:
    return {"sigma": "σ", "kappa": "κ", "alpha": "α"}.get(name, name)


def reproduction_table(data: ReportData) -> Table:
    ref, _ = data.reference
    weak = data.kind == "weak"
    head = ["strategy", "saving", "W", "size", "paper size"] + (["paper W"] if weak else []) + [
        "speedup", "paper speedup", "published", "efficiency", "paper efficiency", "published", "Δ efficiency",
    ]
    out = Table(head)
    for r in ref.itertuples():
        published_s = fmt(r.published_speedup) if pd.notna(r.published_speedup) else DASH
        published_e = f"{r.published_efficiency_pct:.0f}%" if pd.notna(r.published_efficiency_pct) else DASH
        row = [r.strategy, MODE[bool(r.saving)].lower(), str(r.workers), r.size, r.paper_size] + ([str(r.paper_workers)] if weak else [])
        row += [fmt(r.speedup), fmt(r.paper_speedup), published_s, fmt(r.efficiency, "pct"), fmt(r.paper_efficiency, "pct"), published_e]
        row.append(DASH if pd.isna(r.efficiency_diff) else f"{r.efficiency_diff * 100:+.0f} pp")
        out.rows.append(row)
    return out


def setup_items(data: ReportData) -> list[tuple[str, str]]:
    """The machine's state at the start, from meta["setup"] (absent in older runs)."""
    setup = data.meta.get("setup")
    if not setup:
        return [("Setup", "not recorded (run made before set-up checks existed)")]
    items = []
    if setup.get("affinity") is not None:
        items.append(("CPU affinity", f"{len(setup['affinity'])} CPUs ({','.join(map(str, setup['affinity']))})"))
    if setup.get("loadavg"):
        items.append(("Load average at start", " / ".join(f"{x:.2f}" for x in setup["loadavg"]) + " (1 / 5 / 15 min)"))
    items.append(("CPU governor", setup.get("governor") or "not readable here"))
    if setup.get("start_method"):
        items.append(("Start method", setup["start_method"]))
    probes = checks.worker_probes(setup.get("worker_threads"))
    if probes:
        cv2_threads = sorted({p.get("cv2_threads") for p in probes}, key=str)
        pools = sorted({f"{t.get('library')}={t.get('threads')}" for p in probes for t in p.get("threadpools") or []})
        items.append(("Threads in a worker", f"cv2 {', '.join(map(str, cv2_threads))}; " + (", ".join(pools) or "no native pools")))
    items.append(("Usable cores", f"{data.cores} (min of physical cores and affinity): the oversubscription threshold"))
    return items


def title(data: ReportData) -> str:
    cfg = data.meta["config"]
    return f"# {cfg['name']}: {cfg['kind']} scaling"


def header_items(data: ReportData) -> list[tuple[str, str]]:
    m, cfg, host = data.meta, data.meta["config"], data.meta["host"]
    size = "x".join(map(str, cfg["images"]["size"]))
    source = f"images from {cfg['images']['input_dir']}" if cfg["images"]["input_dir"] else f"generated {size} checkerboards"
    items = [
        ("Machine", f"{host['cpu_model']}, {host['physical_cores']} physical / {host['logical_cores']} logical cores, {host['memory_gb']} GiB, {host['os']}"),
        ("Run", f"{m.get('started_at', '?')} to {m.get('ended_at', 'unfinished')}, commit `{m.get('git_commit')}`, start method `{cfg['start_method']}`, cv2 threads {cfg['cv2_threads']}"),
        ("Workload", f"{m.get('n_images', cfg['images']['count'])} images x {cfg['augmentations_per_image']} augmentations, {source} ({cfg['images']['format']}), seed {cfg['seed']}"),
        ("Repeats", f"{cfg['repeats']} recorded after {cfg['warmup']} warm-up per cell; every figure is the median of the recorded repeats"),
    ]
    base = data.table[data.table["strategy"].eq("sequential")]
    for saving, t in zip(base["saving"], base["time_s"], strict=True):
        items.append((f"Baseline ({MODE[saving].lower()})", f"sequential, {t:.2f} s" if pd.notna(t) else "did not finish"))
    return items


def notes(data: ReportData) -> list[tuple[str, list[str]]]:
    """(note, sub-items) pairs."""
    if data.kind == "strong":
        out = [("Strong scaling: speedup S = T_seq / T_W, efficiency E = S / W, ideal execution = T_seq / W; each saving mode against its own sequential baseline.", [])]
    else:
        out = [("Weak scaling: efficiency E = T_seq(base size) / T_W, with the pixels per worker held constant; ideal execution = T_seq(base size). E > 100% is superlinear.", [])]
    missing = [f"{s['strategy']} at W={s['workers']} ({MODE[s['saving']].lower()}): skipped, {s['reason']}" for s in data.skipped]
    bad = data.runs[data.runs["status"].ne("ok")]
    missing += [f"{cell}: {len(rows)} run(s) {status}: {rows['error'].iloc[0]}" for (cell, status), rows in bad.groupby(["cell_id", "status"])]
    out.append((f"{DASH} marks a cell that was not run, or produced no successful repeat:", missing))
    oversub = sorted({int(w) for w in data.table.loc[data.oversubscribed, "workers"]})
    if oversub:
        out.append((f"W = {', '.join(map(str, oversub))} exceed this machine's {data.cores} usable physical cores ({data.meta['host']['physical_cores']} physical): "
                    f"those cells ({checks.OVERSUBSCRIBED}) measure oversubscription, not added hardware.", []))
    out.append(("Busy processes per run: sequential 1; P_1, P_2: the W pool workers; P_Q: W, which counts its savers. The main process "
                "(reading, pickling tasks, waiting) and P_Q's Manager server (relaying images) are not counted, unless the main process "
                "is measured dispatching for over half the wall time.", []))
    out.append(("Every strategy does identical work: augmentation k of image i is seeded with seed + i x augmentations + k (`python -m harness verify` checks the outputs match).", []))
    return out + [(f"Study: {n}", []) for n in reference.INCONSISTENCIES]
