"""report.html is self-contained and carries the tables, warnings, models and the study view;
the set-up checks produce their warnings."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness import checks
from harness.report import load, write_report

CHROMIUM = Path("/usr/bin/chromium")
SETUP = {
    "affinity": [0, 1, 2, 3], "loadavg": [7.5, 3.0, 1.0], "governor": "powersave", "start_method": "fork",
    "worker_threads": {"pid": 1, "cv2_threads": 4, "threadpools": [{"api": "openblas", "library": "libscipy_openblas", "threads": 8}]},
}


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def report(synthetic_run) -> tuple[Path, Collect]:
    run = synthetic_run("run", workers=[1, 2, 4, 8], repeats=5, setup=SETUP)
    written = write_report(run)
    assert run / "report.html" in written and run / "report.md" in written
    parsed = Collect()
    parsed.feed((run / "report.html").read_text())
    return run, parsed


def test_html_is_self_contained(report):
    _, parsed = report
    names = [tag for tag, _ in parsed.tags]
    assert "script" not in names and "link" not in names and "iframe" not in names
    for tag, attrs in parsed.tags:
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith("data:") or attrs[key].startswith("#"), (tag, attrs[key])
    images = [attrs["src"] for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) == 3
    assert all(src.startswith("data:image/png;base64,") for src in images)


def test_html_has_tables_and_sections(report):
    _, parsed = report
    tables = [attrs.get("class") for tag, attrs in parsed.tags if tag == "table"]
    for name in ("paper", "details", "phases", "models", "karp-flatt", "reproduction"):
        assert name in tables
    sections = {attrs.get("id") for tag, attrs in parsed.tags if tag == "section"}
    assert {"setup", "warnings", "results", "details", "phases", "models", "reproduction", "notes"} <= sections
    text = " ".join(parsed.text)
    assert "governor" in text and "powersave" in text  # setup and its warning
    assert "σ=" in text or "serial fraction" in text  # a model sentence
    assert "82.07" in text  # the study's inconsistency, in the notes
    assert "0.43†" in text  # P_1 at W=8 on 4 physical cores: oversubscribed, marked in the paper-shaped table


def test_markdown_sections(report):
    run, _ = report
    md = (run / "report.md").read_text()
    for heading in ("## Warnings", "## Results, shaped like", "## Every cell, with 95% intervals", "## Where the time goes",
                    "## Scaling models", "## Beside the study", "## Notes"):
        assert heading in md
    assert "- **Machine:**" in md and "- **Baseline (saving):**" in md
    assert (run / "plots" / "phases.png").is_file() and (run / "plots" / "models.png").is_file()
    csv = (run / "tables" / "strong.csv").read_text().splitlines()[0]
    for column in ("ci_low", "ci_high", "cv", "unstable", "n_outliers", "speedup_ci_low", "efficiency_ci_high", "utilization"):
        assert column in csv


@pytest.mark.skipif(not CHROMIUM.exists() or shutil.which("chromium") is None, reason="no /usr/bin/chromium")
def test_html_renders_in_headless_chromium(report):
    run, _ = report
    dom = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", (run / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert dom.count("<table") >= 6


def test_setup_warnings_name_each_problem(synthetic_run):
    meta = load(synthetic_run("run", setup=SETUP)).meta
    text = " ".join(checks.pre_run_warnings(meta))
    assert "load average was 7.50" in text
    assert "'powersave'" in text
    assert "OpenCV used 4 threads" in text and "OMP_NUM_THREADS=1" in text
    assert "W = 8" in text  # 8 workers > 4 physical cores
    assert all("Fix:" in w for w in checks.pre_run_warnings(meta))


def test_quiet_setup_raises_nothing_before_the_run(synthetic_run):
    quiet = {"affinity": [0, 1, 2, 3, 4, 5, 6, 7], "loadavg": [0.1, 0.1, 0.1], "governor": "performance", "start_method": "fork",
             "worker_threads": {"cv2_threads": 1, "threadpools": []}}
    meta = load(synthetic_run("run", workers=[1, 2, 4], setup=quiet)).meta
    assert checks.pre_run_warnings(meta) == []


def test_processes_for():
    assert checks.processes_for("sequential", 1) == 1
    assert checks.processes_for("P_2", 4) == 4
    assert checks.processes_for("P_Q", 4) == 4  # W includes the savers
    assert checks.processes_for("P_1", 4, main_works=True) == 5


def test_report_warnings_for_unstable_and_failed_cells(synthetic_run):
    from harness import store

    run = synthetic_run("run", workers=[1, 2], noise=0.2, seed=5)
    runs = store.load_runs(run)
    failed = runs.index[(runs["strategy"] == "P_1") & (runs["workers"] == 2) & runs["saving"]][:2]
    runs.loc[failed, ["status", "error"]] = ["timeout", "cell exceeded its 10 s timeout"]
    runs["steal_s"] = 0.0
    runs.loc[0, "steal_s"] = 0.5 * runs.loc[0, "wall_s"] * 8  # half of all 8 CPUs' time
    runs.to_parquet(run / store.RUNS, index=False)
    text = " ".join(checks.report_warnings(load(run)))
    assert "vary by more than 5%" in text
    assert "2 run(s) did not finish ok" in text and "2 timeout" in text
    assert "(steal) during 1 run(s), up to 50%" in text


def test_phases_use_the_runners_new_columns_when_present(synthetic_run):
    from harness import store
    from harness.analysis import phase_columns, phase_table

    run = synthetic_run("run", workers=[1, 2])
    runs = store.load_runs(run).assign(t_startup_s=0.05, t_dispatch_s=0.01, peak_rss_mb=120.0)
    phases = phase_table(runs)
    assert [label for _, label in phase_columns(phases)][-2:] == ["pool start-up", "overhead/idle"]
    parts = [c for c, _ in phase_columns(phases)]
    assert phases[parts].sum(axis=1).to_numpy() == pytest.approx(phases["wall_s"].to_numpy())
    assert (phases["peak_rss_mb"] == 120.0).all()
    runs.to_parquet(run / store.RUNS, index=False)
    write_report(run)
    md = (run / "report.md").read_text()
    assert "pool start-up [s/worker]" in md and "peak RSS [MB]" in md and "main CPU [s]" in md
