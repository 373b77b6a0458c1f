"""The report's opening: its title, what was run on which machine (the "Run and machine"
facts), and the warnings the set-up checks and the results raised."""

from __future__ import annotations

import pandas as pd

from harness.analysis import processes, setup_checks, stops
from harness.analysis.results import Results
from harness.plan.cells import duration
from harness.report.blocks import Block, Facts, Paragraph, Section, Warnings
from harness.report.format import mode
from harness.schema import BASELINE


def title(results: Results) -> str:
    return f"{results.config.name}: {results.config.kind} scaling"


def run_and_machine(results: Results) -> Section:
    facts = Facts(header_items(results) + setup_items(results))
    return Section("setup", "Run and machine", [facts])


def header_items(results: Results) -> list[tuple[str, str]]:
    m, cfg, host = results.meta, results.config, results.meta["host"]
    size = "x".join(map(str, cfg.images.size))
    source = (
        f"images from {cfg.images.input_dir}"
        if cfg.images.input_dir
        else f"generated {size} checkerboards"
    )
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
            f"`{m.get('git_commit')}`, start method `{cfg.start_method}`, cv2 threads "
            f"{cfg.cv2_threads}",
        ),
        (
            "Workload",
            f"{results.run_meta.images_run} images x {cfg.augmentations_per_image} "
            f"augmentations, {source} ({cfg.images.format}), seed {cfg.seed}",
        ),
        *pipeline_items(m),
        *env_items(cfg.env),
        ("Repeats", repeats_item(results)),
        *estimate_items(results),
        ("Machine time", machine_time_item(results)),
        *warmup_check_items(results),
    ]
    base = results.table[results.table["strategy"].eq(BASELINE)]
    for saving, t in zip(base["saving"], base["time_s"], strict=True):
        value = f"{BASELINE}, {t:.2f} s" if pd.notna(t) else "did not finish"
        items.append((f"Baseline ({mode(saving)})", value))
    return items


def pipeline_items(meta: dict) -> list[tuple[str, str]]:
    """The pipeline named with its digest (runs made before `pipeline:` ran the study's)."""
    found = meta.get("pipeline")
    return [("Pipeline", f"{found['name']}")] if isinstance(found, dict) else []


def env_items(env: dict[str, str]) -> list[tuple[str, str]]:
    """The config's `env:`, which every measuring process ran with (docs/MEMORY.md)."""
    if not env:
        return []
    values = ", ".join(f"`{k}={v}`" for k, v in sorted(env.items()))
    return [("Environment", f"{values}, in every cell's processes, the baseline's too")]


def repeats_item(results: Results) -> str:
    target = stops.run_target(results.run_meta)
    runs, share = results.config.warmup_runs, results.config.warmup_tasks
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
    used, fixed = stops.run_equivalents(results.table, results.runs, results.meta)
    runs, warm = stops.FIXED_DEFAULT
    if pd.isna(used):
        return "no cell finished"
    return (
        f"{used:.2f} run-equivalents per cell (warm-ups included, each cell weighted by its "
        f"median time): {used / fixed:.0%} of the {fixed:.0f} that the fixed default before "
        f"precision targets ({runs} runs after {warm:.0f} full warm-up) costs"
    )


def warmup_check_items(results: Results) -> list[tuple[str, str]]:
    """How much slower each cell's run 0 was than its later runs (sequential order only)."""
    ratios = stops.first_run_ratios(results.runs, results.meta)
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


def estimate_items(results: Results) -> list[tuple[str, str]]:
    """The plan's estimate beside the actual duration, per session of the run."""
    sessions = [s for s in results.meta.get("sessions", []) if s.get("duration_s") is not None]
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
    repeats = results.config.repeats
    if not isinstance(repeats, int) and repeats.spend is not None:
        items.append(
            (
                "Machine-time cap",
                f"{repeats.spend:g} run-equivalents per cell (`repeats.spend`); "
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
                f"{processes.logical_cores(results.meta)} logical CPUs kept busy by other "
                "programs (sampled over about a second)",
            )
        )
    if setup.get("loadavg"):
        load = " / ".join(f"{x:.2f}" for x in setup["loadavg"])
        items.append(("Load average at start", f"{load} (1 / 5 / 15 min)"))
    items.append(("CPU governor", setup.get("governor") or "not readable here"))
    if setup.get("start_method"):
        items.append(("Start method", setup["start_method"]))
    probes = setup_checks.worker_probes(setup.get("worker_threads"))
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


# This topic's sections, in report order (harness.report.sections joins the topics).
SECTIONS = [run_and_machine, warnings]
