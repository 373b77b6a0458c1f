"""report.md: the paper's Table 1 (strong) or Table 2 (weak), with the setup that produced it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.report import ReportData

DASH = "—"
MODE = {True: "Saving", False: "No saving"}


def _fmt(value: float, kind: str) -> str:
    if pd.isna(value):
        return DASH
    if kind == "pct":
        return f"{value * 100:.0f}%"
    return f"{value:.2f}"


def header(data: ReportData) -> list[str]:
    m, cfg, host = data.meta, data.meta["config"], data.meta["host"]
    size = "x".join(map(str, cfg["images"]["size"]))
    lines = [
        f"# {cfg['name']}: {cfg['kind']} scaling",
        "",
        f"- **Machine:** {host['cpu_model']}, {host['physical_cores']} physical / {host['logical_cores']} logical cores, {host['memory_gb']} GiB, {host['os']}",
        f"- **Run:** {m.get('started_at', '?')} to {m.get('ended_at', 'unfinished')}, commit `{m.get('git_commit')}`, start method `{cfg['start_method']}`, cv2 threads {cfg['cv2_threads']}",
        f"- **Workload:** {m.get('n_images', cfg['images']['count'])} images x {cfg['augmentations_per_image']} augmentations, "
        f"{'images from ' + str(cfg['images']['input_dir']) if cfg['images']['input_dir'] else f'generated {size} checkerboards'} ({cfg['images']['format']}), seed {cfg['seed']}",
        f"- **Repeats:** {cfg['repeats']} recorded after {cfg['warmup']} warm-up per cell; every figure is the median of the recorded repeats",
    ]
    for saving, t in _baselines(data).items():
        lines.append(f"- **Baseline ({MODE[saving].lower()}):** sequential, {t:.2f} s" if pd.notna(t) else f"- **Baseline ({MODE[saving].lower()}):** did not finish")
    return lines


def _baselines(data: ReportData) -> dict[bool, float]:
    rows = data.table[data.table["strategy"].eq("sequential")]
    return dict(zip(rows["saving"], rows["time_s"], strict=True))


def paper_table(data: ReportData) -> list[str]:
    """Rows: workers (strong) or image size (weak), grouped by saving mode; columns per strategy."""
    strong = data.kind == "strong"
    names = data.strategies
    metrics = [("Execution time [s]", "time_s", "s")] + ([("Speedup", "speedup", "x")] if strong else []) + [("Efficiency", "efficiency", "pct")]
    first = ["", "Workers" if strong else "Image size", "Ideal execution"]
    head = first + [f"{title}: {n}" for title, _, _ in metrics for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table = data.table.set_index(["strategy", "saving", "workers"])
    for saving in data.meta["config"]["saving"]:
        base = table.loc[("sequential", saving, 1)] if ("sequential", saving, 1) in table.index else None
        label = f"**{MODE[saving]}**"
        if base is not None:
            row0 = [label, "1 (sequential)" if strong else f"{int(base['width'])}x{int(base['height'])} (sequential)", _fmt(base["time_s"], "s")]
            lines.append("| " + " | ".join(row0 + [DASH] * (len(head) - 3)) + " |")
            label = ""
        for workers, (w, h) in _points(data):
            ideal = base["time_s"] / workers if strong and base is not None else (base["time_s"] if base is not None else float("nan"))
            row = [label, str(workers) if strong else f"{w}x{h}", _fmt(ideal, "s")]
            label = ""
            for _, col, kind in metrics:
                for n in names:
                    key = (n, saving, workers)
                    row.append(_fmt(table.loc[key, col], kind) if key in table.index else DASH)
            lines.append("| " + " | ".join(row) + " |")
    return lines


def _points(data: ReportData) -> list[tuple[int, tuple[int, int]]]:
    cfg = data.meta["config"]
    if cfg["kind"] == "strong":
        return [(w, tuple(cfg["images"]["size"])) for w in cfg["workers"]]
    return [(p["workers"], tuple(p["size"])) for p in cfg["points"]]


def notes(data: ReportData) -> list[str]:
    lines = ["", "## Notes", ""]
    if data.kind == "strong":
        lines.append("- Strong scaling: speedup S = T_seq / T_W, efficiency E = S / W, ideal execution = T_seq / W; each saving mode against its own sequential baseline.")
    else:
        lines.append("- Weak scaling: efficiency E = T_seq(base size) / T_W, with the pixels per worker held constant; ideal execution = T_seq(base size). E > 100% is superlinear.")
    lines.append(f"- {DASH} marks a cell that was not run, or produced no successful repeat:")
    for s in data.skipped:
        lines.append(f"  - {s['strategy']} at W={s['workers']} ({MODE[s['saving']].lower()}): skipped, {s['reason']}")
    bad = data.runs[data.runs["status"].ne("ok")]
    for (cell, status), rows in bad.groupby(["cell_id", "status"]):
        lines.append(f"  - {cell}: {len(rows)} run(s) {status}: {rows['error'].iloc[0]}")
    hosts = data.meta["host"]
    oversub = sorted({int(w) for w in data.table["workers"] if w > hosts["physical_cores"]})
    if oversub:
        lines.append(f"- W = {', '.join(map(str, oversub))} exceed this machine's {hosts['physical_cores']} physical cores: those cells measure oversubscription, not added hardware.")
    lines.append("- Every strategy does identical work: augmentation k of image i is seeded with seed + i x augmentations + k (`python -m harness verify` checks the outputs match).")
    return lines


def write(data: ReportData) -> list[Path]:
    title = "Table 1 (strong scaling)" if data.kind == "strong" else "Table 2 (weak scaling)"
    plot = f"plots/{data.kind}_scaling.png"
    body = header(data) + ["", f"## Results, shaped like the study's {title}", ""] + paper_table(data)
    body += ["", f"![{data.kind} scaling]({plot})", "", f"Long-form table: `tables/{data.kind}.csv`; raw runs: `runs.parquet`."]
    body += notes(data)
    out = data.run_dir / "report.md"
    out.write_text("\n".join(body) + "\n")
    return [out]
