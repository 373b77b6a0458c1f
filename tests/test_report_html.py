"""The report: one list of sections rendered as report.md and as a self-contained report.html;
its tables, warnings, models, the study view and the Cores busy section; strategies unknown at
report time; no sentence written twice; the set-up checks and their warnings."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from harness import schema
from harness.analysis import checks, processes
from harness.analysis.results import load_results
from harness.report import blocks, html, markdown, plots, sections, write_report
from harness.report.sections import costs, endnotes, header
from harness.rundir import store

CHROMIUM = Path("/usr/bin/chromium")
HARNESS = Path(__file__).resolve().parent.parent / "harness"
SETUP = {
    "affinity": [0, 1, 2, 3], "loadavg": [7.5, 3.0, 1.0], "governor": "powersave",
    "start_method": "fork",
    "worker_threads": {"pid": 1, "cv2_threads": 4, "threadpools": [
        {"api": "openblas", "library": "libscipy_openblas", "threads": 8}]},
}
QUIET = {"affinity": [0, 1, 2, 3, 4, 5, 6, 7], "loadavg": [0.1, 0.1, 0.1],
         "governor": "performance", "start_method": "fork",
         "worker_threads": {"cv2_threads": 1, "threadpools": []}}


class Collect(HTMLParser):
    """Tags (with the tags open around each), text, and the ids of the sections."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.open: list[tuple[str, dict]] = []
        self.tables_outside_scroll = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table" and not any(t == "div" and "scroll" in (a.get("class") or "").split()
                                      for t, a in self.open):
            self.tables_outside_scroll += 1
        if tag not in ("img", "meta", "br"):
            self.open.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Collect:
    parsed = Collect()
    parsed.feed(page)
    return parsed


@pytest.fixture
def report(synthetic_run) -> tuple[Path, Collect]:
    run = synthetic_run("run", workers=[1, 2, 4, 8], repeats=5, setup=SETUP, cpu=True)
    written = write_report(run)
    assert run / "report.html" in written and run / "report.md" in written
    assert run / "tables" / "strong.csv" in written and run / "plots" / "models.png" in written
    return run, parse((run / "report.html").read_text())


def test_html_is_self_contained(report):
    _, parsed = report
    names = [tag for tag, _ in parsed.tags]
    assert "script" not in names and "link" not in names and "iframe" not in names
    for tag, attrs in parsed.tags:
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith("data:") or attrs[key].startswith("#"), (tag, key)
    images = [attrs["src"] for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) == 3
    assert all(src.startswith("data:image/png;base64,") for src in images)


def test_html_has_tables_and_sections(report):
    _, parsed = report
    tables = [attrs.get("class") for tag, attrs in parsed.tags if tag == "table"]
    for name in ("paper", "details", "phases", "cores-busy", "models", "karp-flatt",
                 "reproduction"):
        assert name in tables
    assert parsed.tables_outside_scroll == 0  # every table scrolls sideways on its own
    ids = [attrs.get("id") for tag, attrs in parsed.tags if tag == "section"]
    # a synthetic run has no traces: the loss section says so, timelines and replay are left out
    assert ids == ["setup", "warnings", "results", "details", "phases", "cores-busy", "losses",
                   "models", "reproduction", "notes"]
    text = " ".join(parsed.text)
    assert "governor" in text and "powersave" in text  # setup and its warning
    assert "σ=" in text or "serial fraction" in text  # a model sentence
    assert "82.07" in text  # the study's inconsistency, in the notes
    assert "0.43†" in text  # P_1 at W=8 on 4 physical cores: oversubscribed, in the paper table


def test_the_scroll_container_cannot_grow_past_the_page(report):
    run, _ = report
    css = (run / "report.html").read_text()
    rule = re.search(r"\.scroll\s*\{([^}]*)\}", css).group(1)
    assert "overflow-x: auto" in rule and "max-width: 100%" in rule


def test_markdown_sections(report):
    run, _ = report
    md = (run / "report.md").read_text()
    for heading in ("## Run and machine", "## Warnings", "## Results, shaped like",
                    "## Every cell, with 95% intervals", "## Where the time goes",
                    "## Cores busy", "## Scaling models", "## Beside the study", "## Notes"):
        assert heading in md
    assert md.startswith("# synthetic_strong: strong scaling\n")
    assert "- **Machine:**" in md and "- **Baseline (saving):**" in md
    for plot in ("strong_scaling", "phases", "models"):
        assert f"](plots/{plot}.png)" in md
        assert (run / "plots" / f"{plot}.png").is_file()
    csv = (run / "tables" / "strong.csv").read_text().splitlines()[0].split(",")
    assert csv == schema.CSV_COLUMNS
    for column in ("ci_low", "ci_high", "cv", "unstable", "n_outliers", "speedup_ci_low",
                   "efficiency_ci_high", "utilization", "processes", "oversubscribed"):
        assert column in csv


def test_every_section_renders_in_both_formats(synthetic_run):
    """Each section of the list appears in report.md under its title and in report.html under its
    id, and every block in it leaves its text in both."""
    run = synthetic_run("run", workers=[1, 2, 4], cpu=True)
    write_report(run)
    results = load_results(run)
    content = sections.build(results)
    assert [s.id for s in content] == ["setup", "warnings", "results", "details", "phases",
                                      "cores-busy", "losses", "models", "reproduction", "notes"]
    md = (run / "report.md").read_text()
    page = (run / "report.html").read_text()
    text = re.sub(r"\s+", " ", "".join(parse(page).text))
    for section in content:
        assert f"\n## {section.title}\n" in md
        assert f'<section id="{section.id}">' in page
        for block in section.blocks:
            assert markdown.render_block(block), (section.id, block)
            for sample in _texts(block):
                plain = re.sub(r"\s+", " ", sample.replace("`", "").replace("**", ""))
                assert sample in md, (section.id, sample)
                assert plain in text, (section.id, plain)


def _texts(block: blocks.Block) -> list[str]:
    """A few strings the block must show."""
    if isinstance(block, blocks.Facts):
        return [value for _, value in block.items[:2]]
    if isinstance(block, blocks.Paragraph):
        return [block.text]
    if isinstance(block, blocks.Bullets):
        return [text for text, _ in block.entries]
    if isinstance(block, blocks.Warnings):
        return block.items
    if isinstance(block, blocks.Table):
        return block.head[1:3] + [cell for cell in block.rows[0][:3] if cell]
    return []


def test_each_block_kind_renders_in_both_formats(tmp_path):
    """A hand-made section with one block of each kind, through both renderers."""
    (tmp_path / "plots").mkdir()
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1, 2])
    plots.save(fig, tmp_path / "plots" / "made.png")
    made = [
        blocks.Facts([("Label", "a `value`")]),
        blocks.Paragraph("A **bold** paragraph.", "legend"),
        blocks.Bullets(["one", ("two:", ["two a", "two b"])]),
        blocks.Table(["x", "y"], [["1", "2"]], "made"),
        blocks.Figure("made.png", "made plot", lambda: None),
        blocks.Figure("absent.png", "absent plot", lambda: None),
        blocks.Warnings(["Careful."]),
    ]
    content = [blocks.Section("made", "Made up", made)]
    md = markdown.render("Title", content)
    assert md.splitlines() == [
        "# Title", "", "## Made up", "", "- **Label:** a `value`", "", "A **bold** paragraph.",
        "", "- one", "- two:", "  - two a", "  - two b", "", "| x | y |", "|---|---|",
        "| 1 | 2 |", "", "![made plot](plots/made.png)", "", "![absent plot](plots/absent.png)",
        "", "- **Warning:** Careful."]
    page = html.render(tmp_path, "Title", content)
    for piece in ('<section id="made">', "<dt>Label</dt><dd>a <code>value</code></dd>",
                  '<p class="legend">A <strong>bold</strong> paragraph.</p>', "<li>two a</li>",
                  '<div class="scroll">\n<table class="made">', "<td>2</td>",
                  'src="data:image/png;base64,', "(absent plot: plots/absent.png not written)",
                  "<li><strong>Warning:</strong> Careful.</li>"):
        assert piece in page


def test_no_sentence_is_written_twice(report):
    """Every paragraph and list item of report.md appears once; and no sentence of the report
    layer is written in two places of the source."""
    run, _ = report
    md = (run / "report.md").read_text().splitlines()
    prose = [line for line in md if line.strip() and not line.startswith(("|", "#", "!["))]
    repeated = [line for line, n in Counter(prose).items() if n > 1]
    assert not repeated
    literals = Counter()
    sources = [*HARNESS.glob("report/**/*.py"), *(HARNESS / "analysis" / n for n in
               ("checks.py", "cell_checks.py", "run_checks.py", "setup_checks.py",
                "models.py", "study.py", "scaling.py", "stops.py", "phases.py",
                "processes.py", "results.py"))]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if len(node.value) >= 30 and " " in node.value:
                    literals[node.value.strip()] += 1
    template = (HARNESS / "report" / "templates" / "report.html.j2").read_text()
    assert not [text for text, n in literals.items() if n > 1]
    assert not [text for text in literals if text in template]
    assert not re.search(r">\s*[A-Z][a-z]+ [a-z]+ [a-z]+[^<{]*\.\s*<", template)  # no prose


def test_cores_busy_section(synthetic_run):
    run = synthetic_run("run", workers=[1, 2, 4, 8], setup=QUIET, cpu=True, steal=True)
    results = load_results(run)
    section = costs.cores_busy(results)
    table = next(b for b in section.blocks if isinstance(b, blocks.Table))
    assert table.head == ["strategy", "saving", "W", "processes", "cores busy", "usable cores",
                          "of usable", "steal [s]"]
    rows = {(r[0], r[1], r[2]): r for r in table.rows}
    assert rows[("P_1", "saving", "2")][4:7] == ["1.90", "4", "48%"]
    assert rows[("P_1", "saving", "8")][3:7] == ["8", "3.80†", "4", "95%"]  # 8 processes > 4
    sentences = next(b for b in section.blocks if isinstance(b, blocks.Bullets)).items
    assert len(sentences) == 4  # sequential, P_1, P_2, P_Q
    assert sentences[0].startswith("sequential: at most 0.95 cores busy")
    assert "could not use more" in sentences[0]
    p1 = next(s for s in sentences if s.startswith("P_1:"))
    assert "at most 3.80 cores busy (W=4" in p1 and "95% of the 4 usable cores" in p1
    intro = section.blocks[0].text
    assert "Steal" in intro and "4 usable cores" in intro


def test_cores_busy_is_unavailable_without_cpu_time(synthetic_run):
    run = synthetic_run("run", workers=[1, 2])
    section = costs.cores_busy(load_results(run))
    assert [b.kind for b in section.blocks] == ["paragraph"]
    assert section.blocks[0].text.startswith("Unavailable")
    write_report(run)
    md = (run / "report.md").read_text()
    assert "## Cores busy\n\nUnavailable" in md


def test_a_strategy_unknown_at_report_time(synthetic_run):
    """A plugin strategy that is no longer installed: its runs still report, as a pool
    strategy with no phases or notes of its own; the plugin that failed to load is named."""
    run = synthetic_run("run", workers=[1, 2, 8], strategies=["P_1", "P_GONE"], cpu=True)
    runs = store.load_runs(run)
    gone = runs["strategy"].eq("P_GONE")
    runs["t_gone_phase_s"] = runs["wall_s"].where(gone) * 0.1
    runs["t_dispatch_s"] = runs["wall_s"] * 0.6  # main busy: counted for a process pool
    runs.to_parquet(run / store.RUNS, index=False)
    meta = store.read_meta(run)
    meta["config"]["plugins"] = ["no_such_augscale_plugin"]
    store.write_meta(run, meta)
    written = write_report(run)
    assert run / "report.html" in written
    results = load_results(run)
    assert "P_GONE" not in results.known and "P_GONE" not in results.in_process
    assert "t_gone_phase_s" not in results.phases  # no phases of its own: part of overhead
    assert results.plugin_errors and "no_such_augscale_plugin" in results.plugin_errors[0]
    table = results.table.assign(processes=results.processes)
    row = table[table["strategy"].eq("P_GONE") & table["workers"].eq(2)].iloc[0]
    assert row["processes"] == 3  # W pool workers + the busy main process
    md = (run / "report.md").read_text()
    assert "`P_GONE`: not known here" in md and "plugin no_such_augscale_plugin" in md
    assert "P_1, P_GONE: the W pool workers" in md
    assert "reads every image in the main process" in md  # P_1's own note, from the registry


def test_strategy_notes_and_phases_come_from_the_registry(synthetic_run):
    run = synthetic_run("run", workers=[1, 2, 4], strategies=["P_Q", "P_T"])
    results = load_results(run)
    assert results.extra_phases == {"t_queue_put_s": "queue put"}
    assert "P_T" in results.in_process and "P_Q" not in results.in_process
    assert any(note.startswith("P_Q: save is the savers' time") for note in results.strategy_notes)
    note = endnotes.busy_processes_note(results)
    assert "P_Q: the W pool workers; P_T: the W threads of its one process" in note
    parts = dict(results.phase_parts)
    assert parts["t_queue_put_s"] == "queue put"
    assert plots.phase_colors(list(parts))["t_queue_put_s"] == plots.EXTRA_PHASE_PALETTE[0]


def test_speedup_axes_are_log2_and_follow_the_measurements(synthetic_run):
    """With W up to 64 and measured speedups of 1.4-2.1, the speedup panel must not be scaled to
    the ideal line: log2, its top at most twice the highest measured upper bound."""
    run = synthetic_run("run", workers=[1, 2, 4, 8, 16, 32, 64], repeats=3)
    runs = store.load_runs(run)
    parallel = runs["strategy"].ne("sequential")
    target = 1.4 + 0.7 * (runs["workers"].map(lambda w: min(w, 8)) - 2) / 6
    base = runs.loc[~parallel].groupby("saving")["wall_s"].median()
    runs.loc[parallel, "wall_s"] = runs.loc[parallel, "saving"].map(base) / target[parallel]
    runs.to_parquet(run / store.RUNS, index=False)
    results = load_results(run)
    highest = results.table["speedup_ci_high"].fillna(results.table["speedup"]).max()
    assert 2.0 < highest < 2.3
    fig = plots.strong_plots(results)
    speed = fig.axes[1]
    assert speed.get_title() == "Speedup"
    assert speed.get_yscale() == "log" and speed.yaxis.get_transform().base == 2
    bottom, top = speed.get_ylim()
    assert highest <= top <= 2 * highest + 1e-9 and top < 64
    assert bottom < 1.0
    labels = [t.get_text() for t in speed.get_yticklabels()]
    assert "1.5" in labels and "2" in labels and "64" not in labels
    plt.close(fig)
    fig = plots.model_plots(results)
    for ax in fig.axes[:2]:
        assert ax.get_yscale() == "log" and ax.get_ylim()[1] < 64
    plt.close(fig)
    assert plots.speedup_limits([1.4], [2.1], 64) == pytest.approx((1 / 1.15, 4.2))
    assert plots.speedup_limits([1.8], [1.9], 2)[1] == pytest.approx(1.9 * 1.15)


@pytest.mark.skipif(not CHROMIUM.exists() or shutil.which("chromium") is None,
                    reason="no /usr/bin/chromium")
def test_html_renders_in_headless_chromium(report):
    run, _ = report
    dom = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                          "--dump-dom", (run / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert dom.count("<table") >= 7


def test_setup_warnings_name_each_problem(synthetic_run):
    meta = load_results(synthetic_run("run", setup=SETUP)).meta
    warnings = checks.pre_run_warnings(meta)
    text = " ".join(warnings)
    assert "load average was 7.50" in text  # no busy_cpus recorded: the load average decides
    assert "'powersave'" in text
    assert "OpenCV used 4 threads" in text and "OMP_NUM_THREADS=1" in text
    assert "W = 8" in text  # 8 workers > 4 physical cores
    assert all("Fix:" in w for w in warnings)


def test_busy_cpus_decide_the_load_warning_when_recorded(synthetic_run):
    busy = {**QUIET, "busy_cpus": 5.5, "loadavg": [0.2, 0.2, 0.2]}
    results = load_results(synthetic_run("busy", workers=[1, 2, 4], setup=busy))
    text = " ".join(checks.pre_run_warnings(results.meta))
    assert "Other programs kept 5.5 of 8 logical CPUs busy at start" in text
    assert "load average" not in text
    facts = dict(header.setup_items(results))
    assert facts["Busy CPUs at start"].startswith("5.5 of 8 logical CPUs")
    calm = {**QUIET, "busy_cpus": 0.3, "loadavg": [7.5, 3.0, 1.0]}  # a lagging load average
    meta = load_results(synthetic_run("calm", workers=[1, 2, 4], setup=calm)).meta
    assert checks.pre_run_warnings(meta) == []


def test_quiet_setup_raises_nothing_before_the_run(synthetic_run):
    meta = load_results(synthetic_run("run", workers=[1, 2, 4], setup=QUIET)).meta
    assert checks.pre_run_warnings(meta) == []


def test_processes_for():
    assert processes.processes_for("sequential", 1) == 1
    assert processes.processes_for("P_2", 4) == 4
    assert processes.processes_for("P_Q", 4) == 4  # W includes the savers
    assert processes.processes_for("P_1", 4, main_works=True) == 5
    assert processes.processes_for("P_T", 4, main_works=True, in_process=True) == 4


def test_a_busy_main_process_counts_only_for_process_pools(synthetic_run):
    """In-process comes from the registry: P_T's threads are its main process, so a busy main
    process adds nothing there; P_1's main process is one more busy process."""
    run = synthetic_run("run", workers=[1, 2, 4], strategies=["P_1", "P_T"])
    runs = store.load_runs(run).assign(t_dispatch_s=lambda r: r["wall_s"] * 0.6)
    runs.to_parquet(run / store.RUNS, index=False)
    results = load_results(run)
    counts = results.table.assign(processes=results.processes).set_index(
        ["strategy", "saving", "workers"])["processes"]
    assert counts[("P_1", True, 2)] == 3 and counts[("P_T", True, 2)] == 2
    assert counts[("sequential", True, 1)] == 1
    assert bool(results.oversubscribed[counts.index.get_loc(("P_1", True, 4))])  # 5 > 4 cores
    assert results.phases.loc[results.phases["strategy"].eq("P_T"), "t_dispatch_s"].isna().all()


def test_report_warnings_for_unstable_and_failed_cells(synthetic_run):
    run = synthetic_run("run", workers=[1, 2], noise=0.2, seed=5)
    runs = store.load_runs(run)
    p1 = (runs["strategy"] == "P_1") & (runs["workers"] == 2) & runs["saving"]
    failed = runs.index[p1][:2]
    runs.loc[failed, ["status", "error"]] = ["timeout", "cell exceeded its 10 s timeout"]
    runs["steal_s"] = 0.0
    runs.loc[0, "steal_s"] = 0.5 * runs.loc[0, "wall_s"] * 8  # half of all 8 CPUs' time
    runs.to_parquet(run / store.RUNS, index=False)
    results = load_results(run)
    text = " ".join(checks.report_warnings(results.meta, results.runs, results.table,
                                           results.oversubscribed))
    assert text == " ".join(results.warnings)
    assert "vary by more than 5%" in text
    assert "2 run(s) did not finish ok" in text and "2 timeout" in text
    assert "(steal) during 1 run(s), up to 50%" in text


def test_phases_use_the_runners_new_columns_when_present(synthetic_run):
    run = synthetic_run("run", workers=[1, 2])
    runs = store.load_runs(run).assign(t_startup_s=0.05, t_dispatch_s=0.01, peak_rss_mb=120.0)
    runs.to_parquet(run / store.RUNS, index=False)
    results = load_results(run)
    phases = results.phases
    assert [label for _, label in results.phase_parts][-2:] == ["pool start-up", "overhead/idle"]
    parts = [c for c, _ in results.phase_parts]
    assert phases[parts].sum(axis=1).to_numpy() == pytest.approx(phases["wall_s"].to_numpy())
    assert (phases["peak_rss_mb"] == 120.0).all()
    assert phases.loc[phases["strategy"].eq("sequential"), "t_dispatch_s"].isna().all()
    write_report(run)
    md = (run / "report.md").read_text()
    assert "pool start-up [s/worker]" in md and "peak RSS [MB]" in md and "main CPU [s]" in md


def test_drift_warning_names_cells_whose_runs_trend_with_time(synthetic_run):
    run = synthetic_run("run", workers=[1, 2], repeats=6, noise=0.01, seed=3)
    runs = store.load_runs(run)
    p1 = (runs["strategy"] == "P_1") & (runs["workers"] == 2) & runs["saving"]
    runs.loc[p1, "wall_s"] *= np.linspace(1.0, 1.25, p1.sum())  # a drift of 25% over the cell
    runs.to_parquet(run / store.RUNS, index=False)
    text = " ".join(load_results(run).warnings)
    assert "The runs of 1 cell(s) trend with time" in text
    assert "P_1 W=2 (saving)" in text and "order: interleaved" in text


def test_no_drift_warning_for_runs_that_only_scatter(synthetic_run):
    run = synthetic_run("run", workers=[1, 2], repeats=9, noise=0.08, seed=4)
    assert "trend with time" not in " ".join(load_results(run).warnings)


def test_cold_run_0_warning_and_warmup_check_when_every_run_0_is_slower(synthetic_run):
    run = synthetic_run("run", workers=[1, 2, 4], repeats=5, noise=0.01, seed=5)
    runs = store.load_runs(run)
    runs.loc[runs["repeat"].eq(0), "wall_s"] *= 1.06  # a warm-up that left 6% for run 0
    runs.to_parquet(run / store.RUNS, index=False)
    results = load_results(run)
    warned = re.search(r"Each cell's run 0 took (\d+\.\d)% longer", " ".join(results.warnings))
    assert warned and 5 < float(warned.group(1)) < 7
    check = dict(header.header_items(results))["Warm-up check"]
    median = float(re.search(r"median (\d\.\d+) over 16 cells", check).group(1))
    assert 1.05 < median < 1.07


def test_no_cold_run_0_warning_for_runs_that_only_scatter(synthetic_run):
    run = synthetic_run("run", workers=[1, 2, 4], repeats=5, noise=0.05, seed=6)
    results = load_results(run)
    assert "longer than its later runs" not in " ".join(results.warnings)
    assert "Warm-up check" in dict(header.header_items(results))


def test_no_warmup_check_in_interleaved_order(synthetic_run):
    run = synthetic_run("run", workers=[1, 2], repeats=5)
    meta = store.read_meta(run)
    meta["config"]["order"] = "interleaved"
    store.write_meta(run, meta)
    assert "Warm-up check" not in dict(header.header_items(load_results(run)))
