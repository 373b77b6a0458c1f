"""What the report says, computed once, as data: an ordered list of section builders, each
(results) -> Section | None, and the blocks a section holds. report.md (markdown.py) and
report.html (html.py + templates/report.html.j2) only render these; every sentence of the
report is written here, or next to the numbers it describes (models, checks, study).

Strings may carry `code` and **bold**, which markdown keeps and html converts.

To add a section, touch two files: a function computing its numbers in
harness/analysis/scaling.py, and a builder here added to SECTIONS (example: "Cores busy",
scaling.cores_busy_table and cores_busy below). Its tables and figures then appear in both
formats; a figure's draw function may live in plots.py. Numbers several sections share are cached
on harness.analysis.results.Results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd
from matplotlib.figure import Figure as MplFigure

from harness import precision, stats
from harness.analysis import checks, losses, replay, scaling, study
from harness.analysis.models import num
from harness.analysis.results import Results
from harness.analysis.scaling import SAVING_LABEL
from harness.measure import seeds
from harness.plan.cells import duration
from harness.report import plots
from harness.schema import BASELINE

DASH = "—"
TABLE_NAME = {"strong": "Table 1 (strong scaling)", "weak": "Table 2 (weak scaling)"}
GREEK = {"sigma": "σ", "kappa": "κ", "alpha": "α"}


# ---------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Facts:
    """Label: value pairs."""

    items: list[tuple[str, str]]
    kind: ClassVar[str] = "facts"


@dataclass(frozen=True)
class Paragraph:
    text: str
    css: str = ""
    kind: ClassVar[str] = "paragraph"


@dataclass(frozen=True)
class Bullets:
    """A list; an item is a string, or (string, sub-items)."""

    items: list[str | tuple[str, list[str]]]
    css: str = ""
    kind: ClassVar[str] = "bullets"

    @property
    def entries(self) -> list[tuple[str, list[str]]]:
        return [(item, []) if isinstance(item, str) else item for item in self.items]


@dataclass(frozen=True)
class Table:
    head: list[str]
    rows: list[list[str]] = field(default_factory=list)
    css: str = ""
    kind: ClassVar[str] = "table"


@dataclass(frozen=True)
class Figure:
    """A plot: drawn by `draw`, saved as plots/<file>, linked (markdown) or embedded (html)."""

    file: str
    alt: str
    draw: Callable[[], MplFigure]
    kind: ClassVar[str] = "figure"

    @property
    def path(self) -> str:
        return f"plots/{self.file}"


@dataclass(frozen=True)
class Warnings:
    items: list[str]
    label: str = "Warning"
    kind: ClassVar[str] = "warnings"


Block = Facts | Paragraph | Bullets | Table | Figure | Warnings


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: list[Block]


# ---------------------------------------------------------------- formatting


def fmt(value: float, kind: str = "s") -> str:
    if pd.isna(value):
        return DASH
    if kind == "pct":
        return f"{value * 100:.0f}%"
    return f"{value:.2f}"


def interval(value: float, low: float, high: float, kind: str = "s") -> str:
    """ "1.23 [1.20, 1.27]"; the bare value when there is no interval (n < 3)."""
    if pd.isna(value):
        return DASH
    if pd.isna(low):
        return fmt(value, kind)
    return f"{fmt(value, kind)} [{fmt(low, kind)}, {fmt(high, kind)}]"


def marks(results: Results, frame: pd.DataFrame | None = None) -> pd.Series:
    """Per row (of the scaling table, or of `frame`): "†" when oversubscribed, "~" when
    unstable (CV > 5%)."""
    table = results.table if frame is None else frame
    over = results.is_oversubscribed(table).map({True: checks.OVERSUBSCRIBED, False: ""})
    if "unstable" not in table:
        return over
    shaky = table["unstable"].fillna(False).astype(bool)
    return over + shaky.map({True: checks.UNSTABLE, False: ""})


def _mode(saving: object) -> str:
    return SAVING_LABEL[bool(saving)]


def _names(items: list[str]) -> str:
    return ", ".join(items)


# ---------------------------------------------------------------- sections


def unavailable(section_id: str, name: str, why: str) -> Section:
    return Section(section_id, name, [Paragraph(f"Unavailable: {why}")])


def title(results: Results) -> str:
    cfg = results.meta["config"]
    return f"{cfg['name']}: {cfg['kind']} scaling"


def run_and_machine(results: Results) -> Section:
    facts = Facts(header_items(results) + setup_items(results))
    return Section("setup", "Run and machine", [facts])


def header_items(results: Results) -> list[tuple[str, str]]:
    m, cfg, host = results.meta, results.meta["config"], results.meta["host"]
    size = "x".join(map(str, cfg["images"]["size"]))
    source = (
        f"images from {cfg['images']['input_dir']}"
        if cfg["images"]["input_dir"]
        else f"generated {size} checkerboards"
    )
    n_images = m.get("n_images", cfg["images"]["count"])
    items = [
        (
            "Machine",
            f"{host['cpu_model']}, {host['physical_cores']} physical / "
            f"{host['logical_cores']} logical cores, {host['memory_gb']} GiB, "
            f"{host['os']}",
        ),
        (
            "Run",
            f"{m.get('started_at', '?')} to {m.get('ended_at', 'unfinished')}, commit "
            f"`{m.get('git_commit')}`, start method `{cfg['start_method']}`, cv2 threads "
            f"{cfg['cv2_threads']}",
        ),
        (
            "Workload",
            f"{n_images} images x {cfg['augmentations_per_image']} augmentations, "
            f"{source} ({cfg['images']['format']}), seed {cfg['seed']}",
        ),
        ("Repeats", repeats_item(results)),
        *estimate_items(m),
        ("Machine time", machine_time_item(results)),
        *warmup_check_items(results),
    ]
    base = results.table[results.table["strategy"].eq(BASELINE)]
    for saving, t in zip(base["saving"], base["time_s"], strict=True):
        value = f"{BASELINE}, {t:.2f} s" if pd.notna(t) else "did not finish"
        items.append((f"Baseline ({_mode(saving)})", value))
    return items


def repeats_item(results: Results) -> str:
    cfg = results.meta["config"]
    target = scaling.run_target(results.meta)
    warm = cfg["warmup"]
    runs, share = (warm, 1.0) if isinstance(warm, int) else (warm["runs"], warm["tasks"])
    warmup = f"{runs} warm-up run(s)" + (f" of {share:.0%} of the tasks" if share < 1 else "")
    if target.fixed:
        recorded = f"{target.min} recorded"
    else:
        recorded = (
            f"recorded until the median's 95% interval is within +-{target.ci:.0%} "
            f"({target.min} to {target.max} runs; cells above {results.cores} usable cores "
            f"stop at {target.min})"
        )
    return (
        f"{recorded}, after {warmup} per cell process; every figure is the median of the "
        "recorded runs"
    )


def machine_time_item(results: Results) -> str:
    used, fixed = scaling.run_equivalents(results.table, results.runs, results.meta)
    runs, warm = scaling.FIXED_DEFAULT
    if pd.isna(used):
        return "no cell finished"
    return (
        f"{used:.2f} run-equivalents per cell (warm-ups included, each cell weighted by its "
        f"median time): {used / fixed:.0%} of the {fixed:.0f} that the fixed default before "
        f"precision targets ({runs} runs after {warm:.0f} full warm-up) costs"
    )


def warmup_check_items(results: Results) -> list[tuple[str, str]]:
    """How much slower each cell's run 0 was than its later runs (sequential order only)."""
    ratios = scaling.first_run_ratios(results.runs, results.meta)
    if ratios.empty:
        return []
    low, mid, high = ratios.quantile([0.25, 0.5, 0.75])
    return [
        (
            "Warm-up check",
            f"run 0 / median of the later runs: median {mid:.3f} over {len(ratios)} cells "
            f"(quartiles {low:.3f} and {high:.3f}); 1 means the warm-up left run 0 nothing "
            "to pay",
        )
    ]


def estimate_items(meta: dict) -> list[tuple[str, str]]:
    """The plan's estimate beside the actual duration, per session of the run."""
    sessions = [s for s in meta.get("sessions", []) if s.get("duration_s") is not None]
    if not sessions:
        return []
    took = sum(s["duration_s"] for s in sessions)
    first = sessions[0]
    over = f" over {len(sessions)} sessions (resumed)" if len(sessions) > 1 else ""
    items = [
        (
            "Duration",
            f"{duration(took)}{over}; the plan estimated {duration(first['estimate_s'])} "
            f"(actual / estimate = {took / first['estimate_s']:.2f})",
        )
    ]
    cut = sorted({c for s in sessions for c in s.get("budget_cut", [])})
    budgets = [s["budget_s"] for s in sessions if s.get("budget_s")]
    if budgets:
        items.append(
            (
                "Budget",
                f"{duration(budgets[-1])}; "
                + (f"cells cut short: {', '.join(cut)}" if cut else "no cell was cut"),
            )
        )
    spent = sorted({c for s in sessions for c in s.get("spend_cut", [])})
    spend = meta["config"]["repeats"]
    if isinstance(spend, dict) and spend.get("spend") is not None:
        items.append(
            (
                "Machine-time cap",
                f"{spend['spend']:g} run-equivalents per cell (`repeats.spend`); "
                + (f"cells cut short: {', '.join(spent)}" if spent else "no cell was cut"),
            )
        )
    return items


def setup_items(results: Results) -> list[tuple[str, str]]:
    """The machine's state at the start, from meta["setup"] (absent in older runs)."""
    setup = results.meta.get("setup")
    if not setup:
        return [("Setup", "not recorded (run made before set-up checks existed)")]
    items = []
    if setup.get("affinity") is not None:
        cpus = ",".join(map(str, setup["affinity"]))
        items.append(("CPU affinity", f"{len(setup['affinity'])} CPUs ({cpus})"))
    if setup.get("busy_cpus") is not None:
        items.append(
            (
                "Busy CPUs at start",
                f"{setup['busy_cpus']:.1f} of "
                f"{scaling.logical_cores(results.meta)} logical CPUs kept busy by other "
                "programs (sampled over about a second)",
            )
        )
    if setup.get("loadavg"):
        load = " / ".join(f"{x:.2f}" for x in setup["loadavg"])
        items.append(("Load average at start", f"{load} (1 / 5 / 15 min)"))
    items.append(("CPU governor", setup.get("governor") or "not readable here"))
    if setup.get("start_method"):
        items.append(("Start method", setup["start_method"]))
    probes = checks.worker_probes(setup.get("worker_threads"))
    if probes:
        cv2_threads = ", ".join(map(str, sorted({p.get("cv2_threads") for p in probes}, key=str)))
        pools = sorted(
            {
                f"{t.get('library')}={t.get('threads')}"
                for p in probes
                for t in p.get("threadpools") or []
            }
        )
        items.append(
            (
                "Threads in a worker",
                f"cv2 {cv2_threads}; " + (", ".join(pools) or "no native pools"),
            )
        )
    items.append(
        (
            "Usable cores",
            f"{results.cores} (min of physical cores and affinity): the oversubscription threshold",
        )
    )
    return items


def warnings(results: Results) -> Section:
    if not results.warnings:
        blocks: list[Block] = [
            Paragraph("None: the set-up checks and the results raised nothing.", "ok")
        ]
    else:
        blocks = [Warnings(results.warnings)]
    return Section("warnings", "Warnings", blocks)


def paper_shaped(results: Results) -> Section:
    kind = results.kind
    return Section(
        "results",
        f"Results, shaped like the study's {TABLE_NAME[kind]}",
        [
            paper_table(results),
            Paragraph(legend(results), "legend"),
            Figure(f"{kind}_scaling.png", f"{kind} scaling", lambda: plots.scaling(results)),
            Paragraph(f"Long-form table: `tables/{kind}.csv`; raw runs: `runs.parquet`."),
        ],
    )


def work_at_each_size(results: Results) -> Section | None:
    """Weak scaling: how much work W times the pixels really was (scaling.work_growth)."""
    if results.kind != "weak":
        return None
    name = "Work at each size"
    table = scaling.work_growth(results.table, results.runs, results.tasks)
    if table.empty:
        why = "this run folder has no per-task traces (`tasks/`) to measure the work with."
        return unavailable("work", name, why)
    intro = (
        "Weak-scaling efficiency E = T_base / T_W assumes that W times the pixels is W times "
        "the work. Work here is the CPU seconds inside the tasks (reading left out, saving in), "
        "the median over the cell's traced runs, against its baseline's; E at the work done = "
        "E x work / W compares T_W with the baseline's time scaled by that work over W "
        "workers. Task CPU includes contention, so above the usable cores (†) it overstates "
        "the work and flatters E at the work done."
    )
    head = ["strategy", "saving", "W", "size", "pixels", "work", "E", "E at the work done"]
    rows = [
        [
            r.strategy,
            _mode(r.saving),
            str(r.workers),
            f"{r.width}x{r.height}",
            f"{r.pixels:.3g}x",
            f"{r.work:.3g}x",
            fmt(r.efficiency, "pct"),
            fmt(r.efficiency_work, "pct") + mark,
        ]
        for r, mark in zip(table.itertuples(), marks(results, table), strict=True)
    ]
    return Section(
        "work", name, [Paragraph(intro), Table(head, rows, "work"), Bullets(work_sentences(table))]
    )


def work_sentences(table: pd.DataFrame) -> list[str]:
    """Per saving mode, at its smallest W above 1: pixels against work."""
    out = []
    for saving, mode in table[table["workers"].gt(1)].groupby("saving", sort=False):
        first = mode[mode["workers"].eq(mode["workers"].min())]
        work, done = first["work"], first["efficiency_work"]
        out.append(
            f"{_mode(saving).capitalize()}, W={first['workers'].iat[0]}: "
            f"{first['pixels'].iat[0]:.3g}x the pixels took {work.min():.2f}-{work.max():.2f}x "
            f"the baseline's work, so E reaches {first['efficiency'].max():.0%}, and the "
            f"efficiency at the work done is {done.min():.0%}-{done.max():.0%}."
        )
    return out


def legend(results: Results) -> str:
    return (
        f"{checks.OVERSUBSCRIBED} more busy processes than the {results.cores} usable physical "
        f"cores (oversubscribed); {checks.UNSTABLE} unstable: the repeats vary by more than "
        f"{stats.UNSTABLE_CV:.0%} (CV). Figures are medians of the ok repeats; {DASH} = not run "
        "or no ok repeat."
    )


def sweep_points(results: Results) -> list[tuple[int, tuple[int, int]]]:
    cfg = results.meta["config"]
    if cfg["kind"] == "strong":
        return [(w, tuple(cfg["images"]["size"])) for w in cfg["workers"]]
    return [(p["workers"], tuple(p["size"])) for p in cfg["points"]]


def paper_table(results: Results) -> Table:
    """Rows: workers (strong) or image size (weak), grouped by saving mode; columns per
    strategy."""
    strong = results.kind == "strong"
    names = results.strategies
    metrics = [("Execution time [s]", "time_s", "s")]
    metrics += [("Speedup", "speedup", "x")] if strong else []
    metrics += [("Efficiency", "efficiency", "pct")]
    head = ["", "Workers" if strong else "Image size", "Ideal execution"]
    head += [f"{heading}: {n}" for heading, _, _ in metrics for n in names]
    rows = []
    table = results.table.assign(mark=marks(results)).set_index(["strategy", "saving", "workers"])
    for saving in results.saving_modes:
        key = (BASELINE, saving, 1)
        base = table.loc[key] if key in table.index else None
        label = f"**{_mode(saving).capitalize()}**"
        if base is not None:
            first = (
                f"1 ({BASELINE})"
                if strong
                else f"{int(base['width'])}x{int(base['height'])} ({BASELINE})"
            )
            rows.append(
                [label, first, fmt(base["time_s"]) + base["mark"]] + [DASH] * (len(head) - 3)
            )
            label = ""
        for workers, (w, h) in sweep_points(results):
            ideal = float("nan")
            if base is not None:
                ideal = base["time_s"] / workers if strong else base["time_s"]
            row = [label, str(workers) if strong else f"{w}x{h}", fmt(ideal)]
            label = ""
            for _, col, kind in metrics:
                for n in names:
                    cell = (n, saving, workers)
                    if cell in table.index and pd.notna(value := table.loc[cell, col]):
                        row.append(fmt(value, kind) + table.loc[cell, "mark"])
                    else:
                        row.append(DASH)
            rows.append(row)
    return Table(head, rows, "paper")


def every_cell(results: Results) -> Section:
    intro = (
        "Time intervals are the distribution-free order-statistic intervals of the median: "
        "[x(k), x(n+1-k)] holds the true median of independent runs with probability exactly "
        "1 - 2 P(Binomial(n, 1/2) < k), whatever their distribution. 95% needs 6 runs; with "
        "fewer the interval is the runs' range and its own coverage is shown (75% with 3). "
        "+- = (high - low) / (2 median), the cell's relative precision; stop = why a precision "
        "target stopped the cell. Speedup and efficiency intervals are percentile bootstraps "
        "(2000 resamples, fixed seed) resampling the baseline's and the cell's runs "
        "independently. CV = std / mean of the ok repeats; outliers: runs with modified z-score "
        f"> 3.5, assessed from 5 ok repeats on ({DASH} below). Processes: busy processes per "
        "run (see Notes)."
    )
    blocks: list[Block] = [Paragraph(intro)]
    if rule := stop_rule_coverage(results):
        blocks.append(Paragraph(rule))
    blocks.append(detail_table(results))
    return Section("details", "Every cell, with 95% intervals", blocks)


def stop_rule_coverage(results: Results) -> str:
    """What stopping on a narrow interval does to its coverage, simulated for this run's
    target at the spread of its own cells."""
    target = scaling.run_target(results.meta)
    spread = results.table["cv"].dropna()
    if target.fixed or spread.empty:
        return ""
    sigma = max(float(spread.median()), 0.001)
    sim = precision.coverage(target, sigma, trials=1000)
    return (
        "Stopping a cell as soon as its interval is narrow biases the interval's coverage down. "
        f"Simulated for this run's rule (+-{target.ci:.0%}, {target.min} to {target.max} runs) "
        f"with log-normal runs at its median CV ({sigma:.1%}), 1000 cells: the final intervals "
        f"held the true median {sim['coverage']:.1%} of the time (each interval alone: 96-99%), "
        f"after {sim['mean_runs']:.1f} runs on average, {sim['reached']:.0%} reaching the target."
    )


def detail_table(results: Results) -> Table:
    """Every cell with its 95% intervals, spread and outliers."""
    t = results.table.assign(mark=marks(results), processes=results.processes)
    head = [
        "strategy",
        "saving",
        "W",
        "size",
        "processes",
        "ok/runs",
        "time [s] [95% CI]",
        "+-",
        "stop",
        "CV",
        "outliers",
        "speedup [95% CI]",
        "efficiency [95% CI]",
        "utilization",
        "marks",
    ]
    rows = [
        [
            r.strategy,
            _mode(r.saving),
            str(r.workers),
            f"{r.width}x{r.height}",
            str(r.processes),
            f"{r.n_ok}/{r.n_runs}",
            interval(r.time_s, r.ci_low, r.ci_high) + _coverage(r.ci_level),
            fmt(r.half_width, "pct") if pd.notna(r.half_width) else DASH,
            r.stop or DASH,
            fmt(r.cv, "pct") if pd.notna(r.cv) else DASH,
            DASH if pd.isna(r.n_outliers) else str(int(r.n_outliers)),
            interval(r.speedup, r.speedup_ci_low, r.speedup_ci_high),
            interval(r.efficiency, r.efficiency_ci_low, r.efficiency_ci_high, "pct"),
            fmt(r.utilization, "pct"),
            r.mark,
        ]
        for r in t.itertuples()
    ]
    return Table(head, rows, "details")


def _coverage(level: float) -> str:
    """The interval's own coverage when it is below 95% (the runs' range, under 6 runs)."""
    return f" ({level:.0%})" if pd.notna(level) and level < 0.95 else ""


def seed_sensitivity(results: Results) -> Section | None:
    """The baseline at other seeds (`python -m harness seeds`), when the folder has seeds.json."""
    found = seeds.read(results.run_dir)
    if found is None:
        return None
    own = results.meta["config"]["seed"]
    table = Table(["seed", *(_mode(s.saving) for s in found.spreads)])
    for seed in found.seeds:
        row = [f"{seed} (this run's)" if seed == own else str(seed)]
        for spread in found.spreads:
            rounds = [
                f"{r.wall_s:.2f}"
                for r in found.runs
                if (r.seed, r.saving) == (seed, spread.saving) and r.wall_s is not None
            ]
            median = fmt(spread.times.get(seed, float("nan")))
            row.append(median + (f" ({', '.join(rounds)})" if len(rounds) > 1 else ""))
        table.rows.append(row)
    text = (
        f"The {found.workload()}, timed by `python -m harness seeds` "
        f"({found.ended_at}, `{seeds.FILE}`). Seconds, the median of a seed's rounds "
        "(each round's time in brackets):"
    )
    spread = [
        f"{s.line()}: {s.verdict()}. This run's own baseline: "
        f"{fmt(results.baselines.get(s.saving))} s at seed {own}"
        for s in found.spreads
    ]
    blocks: list[Block] = [Paragraph(text), table, Bullets(spread), Paragraph(seeds.COMPARE)]
    if caveats := seed_caveats(results, found):
        blocks.append(Warnings(caveats))
    return Section("seeds", "Seed sensitivity", blocks)


def seed_caveats(results: Results, found: seeds.Seeds) -> list[str]:
    there, here = (
        (h.get("hostname"), h.get("cpu_model")) for h in (found.host, results.meta["host"])
    )
    items = []
    if there != here:
        items.append(
            f"measured on {there[0]} ({there[1]}), not on this run's machine {here[0]} "
            f"({here[1]}): its times do not compare with the run's"
        )
    if found.interrupted:
        items.append(
            f"interrupted by {found.interrupted} after {len(found.runs)} of {found.planned} runs"
        )
    items += [f"seed {r.seed}, {_mode(r.saving)}: {r.status}: {r.error}" for r in found.failed]
    return items


def where_the_time_goes(results: Results) -> Section:
    if results.phases.empty:
        return Section(
            "phases",
            "Where the time goes",
            [Paragraph("No run finished ok with phase timings, so there is nothing to split.")],
        )
    return Section(
        "phases",
        "Where the time goes",
        [
            Figure("phases.png", "phases", lambda: plots.phase_plots(results)),
            phases_table(results),
            Bullets(phase_notes(results)),
        ],
    )


# Columns the phase table shows after utilization, where the runs have them.
PHASE_EXTRAS = {
    "cores_busy": ("cores busy", "{:.2f}"),
    "t_dispatch_s": ("main CPU [s]", "{:.3f}"),
    "peak_rss_mb": ("peak RSS [MB]", "{:.0f}"),
}


def phases_table(results: Results) -> Table:
    phases = results.phases
    parts = results.phase_parts
    extra = [(c, label, form) for c, (label, form) in PHASE_EXTRAS.items() if c in phases]
    head = ["strategy", "saving", "W", "wall [s]"] + [f"{label} [s/worker]" for _, label in parts]
    head += ["utilization"] + [label for _, label, _ in extra]
    rows = []
    for _, r in phases.iterrows():
        row = [r["strategy"], _mode(r["saving"]), str(r["workers"]), fmt(r["wall_s"])]
        row += [f"{r[c]:.3f}" for c, _ in parts] + [fmt(r["utilization"], "pct")]
        row += [DASH if pd.isna(r[c]) else form.format(r[c]) for c, _, form in extra]
        rows.append(row)
    return Table(head, rows, "phases")


def phase_notes(results: Results) -> list[str]:
    notes = [
        "Each phase is the seconds summed over tasks divided by the workers, averaged over the ok "
        "runs; overhead/idle is the rest of the wall time (pool start-up, pickling and hand-out, "
        "waiting). Utilization = (read + augment + save) / (wall x workers).",
        "The phase times are wall-clock per task: with more busy processes than cores "
        f"({checks.OVERSUBSCRIBED}) they include time spent waiting for a CPU, so utilization "
        "there overstates real CPU use. Cores busy is the real use: CPU seconds of all the run's "
        "processes (getrusage of the cell process and its reaped children) per wall second; it "
        "cannot exceed the cores.",
        "Main CPU is the CPU time of the main process during the run: reading where it reads, "
        "pickling tasks out and results back, managing the pool. Pool start-up is the time to "
        "create the pool (forking W workers).",
    ]
    return notes + results.strategy_notes


def cores_busy(results: Results) -> Section:
    """How many cores each cell really kept busy, beside the usable cores."""
    table = scaling.cores_busy_table(results.runs)
    name = "Cores busy"
    if table is None:
        why = (
            "this run folder records no CPU time per run (`t_cpu_s`), so how many cores its runs "
            "kept busy cannot be shown. Runs recorded by a newer harness have it."
        )
        return unavailable("cores-busy", name, why)
    intro = (
        "Cores busy = CPU seconds of all the run's processes (`t_cpu_s`) per wall second, the "
        "median over a cell's ok runs: the cores a run really kept busy, whatever its phase "
        f"times say. It cannot exceed the {results.cores} usable cores (min of physical cores "
        "and affinity)."
    )
    if "steal_s" in table:
        intro += (
            " Steal: CPU seconds the hypervisor took from this VM during the run (median), "
            "time the run's processes wanted a CPU and did not get one."
        )
    return Section(
        "cores-busy",
        name,
        [
            Paragraph(intro),
            cores_busy_table(results, table),
            Bullets(cores_busy_sentences(results, table)),
        ],
    )


def cores_busy_table(results: Results, table: pd.DataFrame) -> Table:
    steal = "steal_s" in table
    processes = results.per_cell(results.processes, table)
    head = ["strategy", "saving", "W", "processes", "cores busy", "usable cores", "of usable"]
    head += ["steal [s]"] if steal else []
    rows = []
    for r, procs, mark in zip(table.itertuples(), processes, marks(results, table), strict=True):
        row = [
            r.strategy,
            _mode(r.saving),
            str(r.workers),
            DASH if pd.isna(procs) else str(int(procs)),
            fmt(r.cores_busy) + mark,
            str(results.cores),
            fmt(r.cores_busy / results.cores, "pct"),
        ]
        row += [DASH if pd.isna(r.steal_s) else f"{r.steal_s:.3f}"] if steal else []
        rows.append(row)
    return Table(head, rows, "cores-busy")


def cores_busy_sentences(results: Results, table: pd.DataFrame) -> list[str]:
    """One per strategy: the most cores it kept busy, against the usable cores."""
    cores = results.cores
    peaks = scaling.cores_busy_peaks(table)
    processes = results.per_cell(results.processes, peaks)
    out = []
    for r, procs in zip(peaks.itertuples(), processes, strict=True):
        share = r.cores_busy / cores
        text = (
            f"{r.strategy}: at most {r.cores_busy:.2f} cores busy (W={r.workers}, "
            f"{_mode(r.saving)}), {share:.0%} of the {cores} usable cores"
        )
        if share >= 0.9:
            text += ": the machine's cores were nearly all in use."
        elif pd.notna(procs) and procs < cores:
            text += f"; with {int(procs)} busy process(es) it could not use more."
        else:
            text += (
                f"; {cores - r.cores_busy:.1f} core(s) stayed idle even there: its "
                "processes spent that time waiting, not computing."
            )
        out.append(text)
    return out


def why_efficiency_is_lost(results: Results) -> Section:
    """The loss account per cell (harness/analysis/losses.py), from the per-task traces."""
    name = "Why efficiency is lost"
    if results.tasks is None:
        why = "this run folder has no per-task traces (`tasks/`); newer runs have them."
        return unavailable("losses", name, why)
    table = results.losses
    if table.empty:
        why = (
            "no cell has both a traced run and a sequential run of the same image size and "
            "saving mode to compare its tasks with (weak scaling grows the images)."
        )
        return unavailable("losses", name, why)
    intro = (
        "For each cell's median run (the ok run nearest the median wall time; its efficiency is "
        "E run, beside the table's E from medians), the efficiency it lost, 100 (1 − E run), split "
        "into causes measured from the per-task traces against each task's twin in the median "
        "sequential run (identical seeded work). The causes add up to the loss; see the README, "
        "'Why it stops scaling', for each one. Load balance, communication efficiency, parallel "
        "efficiency, computation scaling and global efficiency are the POP metrics of the same run."
    )
    blocks: list[Block] = [
        Paragraph(intro),
        loss_table(table),
        Figure("losses.png", "efficiency lost, by cause", lambda: plots.loss_bars(results)),
        Bullets(loss_sentences(results)),
    ]
    return Section("losses", name, blocks + loss_warnings(table))


def loss_table(table: pd.DataFrame) -> Table:
    causes = list(losses.LOSSES.values())
    head = [
        "strategy",
        "saving",
        "W",
        "E",
        "E run",
        *causes,
        "residual",
        "load balance",
        "comm. eff.",
        "parallel eff.",
        "comp. scaling",
        "global eff.",
        "task CPU / workers' CPU",
    ]
    out = Table(head, css="losses")
    for _, r in table.iterrows():
        out.rows.append(
            [
                r["strategy"],
                _mode(r["saving"]),
                str(r["workers"]),
                fmt(r["efficiency"], "pct"),
                fmt(r["efficiency_run"], "pct"),
                *[f"{r[c]:+.1f}" for c in losses.LOSS_COLUMNS],
                f"{r['closure_residual_pp']:+.2f}",
                *[fmt(r[c]) for c in losses.POP],
                fmt(r["cpu_agreement"]),
            ]
        )
    return out


def loss_sentences(results: Results) -> list[str]:
    out = []
    for c in losses.largest_causes(results.losses, results.cores):
        out.append(
            f"{c['strategy']} ({_mode(c['saving'])}) at W={c['workers']} loses "
            f"{c['lost_pp']:.0f} pp of efficiency; the largest cause is {c['cause']} "
            f"({c['cause_pp']:.0f} pp)."
        )
    return out


def loss_warnings(table: pd.DataFrame) -> list[Block]:
    bad = table[table["closure_residual_pp"].abs() > losses.RESIDUAL_PP]
    off = table[(table["cpu_agreement"] - 1).abs() > losses.CPU_AGREEMENT]
    found = []
    if len(bad):
        found.append(
            f"{len(bad)} cell(s) do not close: the causes miss 100 (1 − E run) by more than "
            f"{losses.RESIDUAL_PP} pp (column residual), a measurement problem (lanes or task "
            "twins missing from the trace)."
        )
    if len(off):
        found.append(
            f"In {len(off)} cell(s) the tasks' own CPU time differs from the workers' CPU time "
            f"(getrusage) by more than {losses.CPU_AGREEMENT:.0%}: the rest is pickling, queues "
            "and pool management (or OpenCV threads that thread_time cannot see when "
            "cv2_threads > 1)."
        )
    return [Warnings(found, label="Note")] if found else []


def timelines(results: Results) -> Section | None:
    """Gantt charts of median runs: at the largest W within the usable cores, and the largest."""
    if results.tasks is None:
        return None
    picks = []
    for (strategy, saving), rows in results.runs.groupby(["strategy", "saving"], sort=False):
        ws = sorted(set(rows["workers"]))
        within = [w for w in ws if w <= results.cores]
        for w in dict.fromkeys([*within[-1:], ws[-1]]):
            run = losses.representative(rows[rows["workers"].eq(w)])
            if run is not None and len(results.run_trace(run["cell_id"], run["repeat"])):
                picks.append((run, f"{strategy} W={w} ({_mode(saving)}), {run['wall_s']:.2f} s"))
    if not picks:
        return None
    text = (
        "One row per worker lane (a process, or a thread for in-process strategies; savers are "
        "lanes too) and one for the main thread; each task is drawn in its phases (read, augment, "
        "save, hand-off to a saver), the main thread's spans as read, pool start-up, dispatch "
        "(hand-out and join). Gaps are idle time. `python -m harness trace RUN_DIR` writes any "
        "run as Chrome trace-event JSON for Perfetto or chrome://tracing."
    )
    figure = Figure("timelines.png", "timelines", lambda: plots.timelines(results, picks))
    return Section("timelines", "Timelines", [Paragraph(text), figure])


def replay_bound(results: Results) -> Section | None:
    """What W ideal cores would give under each strategy's own scheduling rule."""
    if results.kind != "strong" or results.tasks is None:
        return None
    table = results.replayed
    if table.empty:
        return None
    text = (
        "The sequential run's per-task costs replayed under each strategy's scheduling rule "
        "(chunks handed to the next free worker, a serial read where main reads, savers where "
        "it has them) on W ideal cores, plus the pool start-up and per-task hand-out measured "
        "here: an upper bound, since nothing in it can contend. Where W is within the usable "
        "cores, the gap to the measured speedup is contention and unmodelled overhead. The "
        "same replay fed with the median run's own task times (its contention in them) checks "
        "the model: what remains between that and the measured speedup, the model missed. "
        "≈ marks a strategy whose rule only approximates how it hands out tasks (its note "
        "says how). `python -m harness predict RUN_DIR --workers 1 2 4 … 64` replays any W. "
        "See the README, 'What the replay assumes'."
    )
    out = Table(
        [
            "strategy",
            "saving",
            "W",
            "predicted (bound)",
            "measured [95% CI]",
            "measured / predicted",
            "replayed from the run's tasks",
            "measured / replayed",
        ],
        css="replay",
    )
    for r in table.itertuples():
        out.rows.append(
            [
                r.strategy + ("" if r.exact else " ≈"),
                _mode(r.saving),
                str(r.workers) + marks_for_workers(results, r.workers),
                fmt(r.predicted_speedup),
                interval(r.measured_speedup, r.measured_ci_low, r.measured_ci_high),
                _ratio(r.measured_speedup, r.predicted_speedup),
                fmt(r.replayed_run_speedup),
                _ratio(r.measured_speedup, r.replayed_run_speedup),
            ]
        )
    return Section(
        "replay", "What an ideal machine would give (replay bound)", [Paragraph(text), out]
    )


def _ratio(a: float, b: float) -> str:
    return DASH if pd.isna(a) or pd.isna(b) else f"{a / b:.0%}"


def marks_for_workers(results: Results, workers: int) -> str:
    return " †" if workers > results.cores else ""


def scaling_models(results: Results) -> Section:
    what = (
        "Amdahl and the Universal Scalability Law (USL)"
        if results.kind == "strong"
        else "Gustafson's law on the scaled speedup E x W"
    )
    blocks: list[Block] = [
        Paragraph(
            f"Fitted per strategy and saving mode to the per-run speedups ({what}); the "
            f"{BASELINE} runs are the W = 1 points."
        ),
        Bullets(
            [s.sentence for s in results.fits] or ["No strategy has runs to fit."], "sentences"
        ),
    ]
    fitted = model_table(results)
    if fitted.rows:
        blocks.append(fitted)
    kf = karp_flatt_table(results)
    if kf is not None:
        blocks += [
            Paragraph(
                "Karp–Flatt serial fraction e(W) = (1/S − 1/W) / (1 − 1/W): constant "
                "with W means a fixed serial part; growing with W means overhead "
                "that grows with the processes."
            ),
            kf,
        ]
    blocks.append(Figure("models.png", "models", lambda: plots.model_plots(results)))
    return Section("models", "Scaling models", blocks)


def model_table(results: Results) -> Table:
    rows = []
    for series in results.fits:
        for f in series.fits.values():
            params = ", ".join(
                f"{GREEK.get(k, k)}={num(v)} ±{num(f.errors[k])}" for k, v in f.params.items()
            )
            rows.append(
                [
                    series.label,
                    f.model,
                    params,
                    f"{f.rel_rmse:.1%}",
                    f"{f.r2:.3f}" if pd.notna(f.r2) else DASH,
                    str(f.n_points),
                ]
            )
    head = [
        "series",
        "model",
        "parameters (± standard error)",
        "residual RMS / mean S",
        "R²",
        "runs",
    ]
    return Table(head, rows, "models")


def karp_flatt_table(results: Results) -> Table | None:
    kf = results.karp_flatt
    if kf is None or kf.empty:
        return None
    rows = [
        [r.strategy, _mode(r.saving), str(r.workers), fmt(r.speedup), f"{r.karp_flatt:.3f}"]
        for r in kf.itertuples()
    ]
    return Table(
        ["strategy", "saving", "W", "speedup (median)", "Karp–Flatt e(W)"], rows, "karp-flatt"
    )


def beside_the_study(results: Results) -> Section:
    ref, series = results.reproduction
    blocks: list[Block] = [
        Paragraph(
            f"Matched to the study's `{series}` series (harness/data/paper_results.csv): paper "
            'columns are recomputed from its times, "published" are the figures printed in the '
            "paper."
        )
    ]
    if len(ref):
        blocks.append(reproduction_table(results))
    else:
        blocks.append(Paragraph("No cell of this run has a counterpart in the study."))
    blocks.append(Bullets(study.notes(results.meta, results.kind, series)))
    if results.kind == "strong":
        blocks += study_replay(results)
    return Section("reproduction", "Beside the study", blocks)


def study_replay(results: Results) -> list[Block]:
    """The replay at the study's worker counts, beside the study's efficiencies."""
    table, why = results.study_replay
    if why is not None:
        return [
            Paragraph(
                f"Replay of the study's worker counts: not available here, since {why}. "
                f"Make one with `{replay.STUDY_RUN}` (29 min on a 2-core VM) and read its "
                "report."
            )
        ]
    text = (
        "The sequential run's per-task costs at the study's size replayed at the study's worker "
        "counts on W ideal cores (see 'What an ideal machine would give'): the efficiency that "
        "load imbalance, the serial read and the pool's fixed costs alone would leave. The gap "
        "is what the study's machine lost beyond them: contention, oversubscription (its core "
        "count is unknown), and whatever else the replay cannot see (Manager and queue "
        "throughput, pickling that grows with W, the OS scheduler). It uses this machine's "
        "task costs and fixed costs, whose ratios may differ on the study's."
    )
    out = Table(
        [
            "strategy",
            "saving",
            "W",
            "replay (bound)",
            "study",
            "study − replay",
            "measured here [95% CI]",
        ],
        css="study-replay",
    )
    for r in table.itertuples():
        out.rows.append(
            [
                r.strategy,
                _mode(r.saving),
                str(r.workers),
                fmt(r.predicted_efficiency, "pct"),
                fmt(r.paper_efficiency, "pct"),
                f"{-r.gap_pp:+.0f} pp",
                interval(
                    r.measured_efficiency, r.measured_ci_low, r.measured_ci_high, "pct"
                ),
            ]
        )
    return [Paragraph(text), out, Paragraph(study_replay_summary(table))]


def study_replay_summary(table: pd.DataFrame) -> str:
    """One sentence from the numbers: where the study falls furthest below the bound."""
    worst = table.loc[table["gap_pp"].idxmax()]
    within = table[table["gap_pp"].le(5)]
    return (
        f"The study falls furthest below the bound for {worst['strategy']} "
        f"({_mode(worst['saving'])}) at W={worst['workers']}: "
        f"{worst['paper_efficiency']:.0%} against {worst['predicted_efficiency']:.0%}, "
        f"{worst['gap_pp']:.0f} pp that imbalance and serial parts do not explain; "
        f"{len(within)} of {len(table)} study cells are within 5 pp of the bound."
    )


def reproduction_table(results: Results) -> Table:
    ref, _ = results.reproduction
    weak = results.kind == "weak"
    head = ["strategy", "saving", "W", "size", "paper size"] + (["paper W"] if weak else [])
    head += [
        "speedup",
        "paper speedup",
        "published",
        "efficiency",
        "paper efficiency",
        "published",
        "Δ efficiency",
    ]
    rows = []
    for r in ref.itertuples():
        published_s = fmt(r.published_speedup) if pd.notna(r.published_speedup) else DASH
        published_e = (
            f"{r.published_efficiency_pct:.0f}%" if pd.notna(r.published_efficiency_pct) else DASH
        )
        row = [r.strategy, _mode(r.saving), str(r.workers), r.size, r.paper_size]
        row += [str(r.paper_workers)] if weak else []
        row += [
            fmt(r.speedup),
            fmt(r.paper_speedup),
            published_s,
            fmt(r.efficiency, "pct"),
            fmt(r.paper_efficiency, "pct"),
            published_e,
        ]
        row.append(DASH if pd.isna(r.efficiency_diff) else f"{r.efficiency_diff * 100:+.0f} pp")
        rows.append(row)
    return Table(head, rows, "reproduction")


def notes(results: Results) -> Section:
    if results.kind == "strong":
        items: list[str | tuple[str, list[str]]] = [
            "Strong scaling: speedup S = T_seq / T_W, efficiency E = S / W, ideal execution = "
            "T_seq / W; each saving mode against its own sequential baseline."
        ]
    else:
        items = [
            "Weak scaling: efficiency E = T_seq(base size) / T_W, with the pixels per worker held "
            "constant; ideal execution = T_seq(base size). E > 100% need not be superlinear: "
            'it assumes W times the pixels is W times the work (see "Work at each size").'
        ]
    missing = [
        f"{s['strategy']} at W={s['workers']} ({_mode(s['saving'])}): skipped, {s['reason']}"
        for s in results.skipped
    ]
    bad = results.runs[results.runs["status"].ne("ok")]
    missing += [
        f"{cell}: {len(rows)} run(s) {status}: {rows['error'].iloc[0]}"
        for (cell, status), rows in bad.groupby(["cell_id", "status"])
    ]
    items.append(
        (f"{DASH} marks a cell that was not run, or produced no successful repeat:", missing)
    )
    oversub = sorted({int(w) for w in results.table.loc[results.oversubscribed, "workers"]})
    if oversub:
        items.append(
            f"W = {', '.join(map(str, oversub))} exceed this machine's {results.cores} usable "
            f"physical cores ({results.meta['host']['physical_cores']} physical): those cells "
            f"({checks.OVERSUBSCRIBED}) measure oversubscription, not added hardware."
        )
    items.append(busy_processes_note(results))
    items.append(strategies_note(results))
    items.append(
        "Every strategy does identical work: augmentation k of image i is seeded with seed + i x "
        "augmentations + k (`python -m harness verify` checks the outputs match)."
    )
    items += [f"Study: {n}" for n in study.INCONSISTENCIES]
    return Section("notes", "Notes", [Bullets(items)])


def busy_processes_note(results: Results) -> str:
    """How the processes column counts, for the run's strategies."""
    names = [n for n in results.strategies if n != BASELINE]
    pools = [n for n in names if n not in results.in_process]
    threads = [n for n in names if n in results.in_process]
    parts = [f"{BASELINE} 1"]
    parts += [f"{_names(pools)}: the W pool workers"] if pools else []
    parts += [f"{_names(threads)}: the W threads of its one process"] if threads else []
    text = (
        f"Busy processes per run: {'; '.join(parts)}. The main process (reading, pickling tasks, "
        "waiting) and helper processes that only relay data are not counted, unless the main "
        f"process is measured dispatching for over {scaling.MAIN_BUSY_FRACTION:.0%} of the wall "
        "time"
    )
    if threads:
        text += " (never for threads, whose CPU time is the main process's own)"
    return text + "."


def strategies_note(results: Results) -> tuple[str, list[str]]:
    """Each strategy of the run in one line, from the registry."""
    lines = []
    for name in [BASELINE, *results.strategies]:
        known = results.known.get(name)
        if known is None:
            lines.append(
                f"`{name}`: not known here (its plugin is not installed), so it counts "
                "as W pool workers, with no phases or notes of its own"
            )
        else:
            lines.append(f"`{name}`: {known.summary}")
    lines += [f"plugin {error}" for error in results.plugin_errors]
    return "Strategies:", lines


# The report, in order. Adding a section = one function above (numbers from scaling.py) + one
# entry here.
SECTIONS: list[Callable[[Results], Section | None]] = [
    run_and_machine,
    warnings,
    paper_shaped,
    work_at_each_size,
    every_cell,
    seed_sensitivity,
    where_the_time_goes,
    cores_busy,
    why_efficiency_is_lost,
    timelines,
    replay_bound,
    scaling_models,
    beside_the_study,
    notes,
]


def build(results: Results) -> list[Section]:
    """Every section the run has, in order."""
    return [section for builder in SECTIONS if (section := builder(results)) is not None]


def figures(sections: list[Section]) -> list[Figure]:
    return [block for s in sections for block in s.blocks if isinstance(block, Figure)]
