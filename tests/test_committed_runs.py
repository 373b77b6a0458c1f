"""Every run folder committed under results/: its tables re-render byte for byte from what it
stores (so a table the docs cite is what today's code computes from the folder), and it is in the
slim form a clone can carry (docs/RESULTS.md, "What is committed")."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.analysis.results import load_results
from harness.report import table_csv

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
SLIM = {"meta.json", "runs.parquet", "report.md", "tables", "tasks.parquet"}
OPTIONAL = {"seeds.json", "dimension.json", "profile.json"}
REQUIRED = {"meta.json", "runs.parquet", "report.md", "tables"}
NEVER = {"cells", "tasks", "plots", "report.html"}  # scratch, packed traces, rebuilt by `report`
RENDERED = ("tables", "report.md", "report.html", "plots", "cells")  # not copied to re-render
MAX_FILES = 1000
MAX_BYTES = 36 * 2**20  # 30 until the own-workload races (4.3 and 1.6 MB of traces) came in


def _git(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=ROOT, input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout


def _tracked() -> list[str] | None:
    """The paths git tracks under results/, or None outside a git checkout."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    return _git("ls-files", "-z", "--", "results").split("\0")[:-1]


TRACKED = _tracked()


def _committed() -> list[Path]:
    """The run folders: results/<name>/<run id>/ holding a meta.json (not the `latest` links).
    Tracked ones in a git checkout, so a local, uncommitted run is not judged."""
    if TRACKED is None:
        metas = RESULTS.glob("*/*/meta.json")
    else:
        metas = (ROOT / p for p in TRACKED if p.count("/") == 3 and p.endswith("/meta.json"))
    return sorted({m.parent for m in metas if not m.parent.is_symlink()})


COMMITTED = _committed()
IDS = [f"{p.parent.name}/{p.name}" for p in COMMITTED]
needs_git = pytest.mark.skipif(TRACKED is None, reason="needs a git checkout")


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each config's run folders copied without their rendered files, beside each other as in
    results/ (a paired run's report reads its earlier sessions from the folders beside it)."""
    root = tmp_path_factory.mktemp("results")
    for run in COMMITTED:
        shutil.copytree(
            run, root / run.parent.name / run.name, ignore=shutil.ignore_patterns(*RENDERED)
        )
    return root


@pytest.mark.slow  # renders every committed run
@pytest.mark.parametrize("run", COMMITTED, ids=IDS)
def test_tables_re_render_exactly(run: Path, copies: Path) -> None:
    copy = copies / run.parent.name / run.name
    written = {p.name: p.read_bytes() for p in table_csv.write(load_results(copy))}
    committed = {p.name: p.read_bytes() for p in sorted((run / "tables").glob("*.csv"))}
    changed = sorted(n for n in committed.keys() & written.keys() if committed[n] != written[n])
    missing = sorted(committed.keys() - written.keys())  # committed, no longer produced
    extra = sorted(written.keys() - committed.keys())  # produced, not committed
    assert not (changed or missing or extra), (
        f"{run.relative_to(ROOT)}: tables differ from a re-render: changed {changed}, "
        f"no longer produced {missing}, not committed {extra}. "
        f"Fix: make report RUN={run.relative_to(ROOT)} and commit its tables/"
    )


@needs_git
@pytest.mark.parametrize("run", COMMITTED, ids=IDS)
def test_a_committed_folder_is_slim(run: Path) -> None:
    prefix = f"{run.relative_to(ROOT).as_posix()}/"
    inside = [p.removeprefix(prefix) for p in TRACKED or [] if p.startswith(prefix)]
    top = {p.split("/")[0] for p in inside}
    beyond = top - SLIM - OPTIONAL
    assert not beyond, f"{prefix}: tracked beyond the slim form: {sorted(beyond)}"
    assert REQUIRED <= top, f"{prefix}: lacks {REQUIRED - top}"
    tables = [p for p in inside if p.startswith("tables/")]
    assert all(p.endswith(".csv") and p.count("/") == 1 for p in tables), tables


@needs_git
def test_nothing_rebuildable_is_tracked() -> None:
    found = sorted(p for p in TRACKED or [] if NEVER & set(p.split("/")))
    assert not found, f"{len(found)} tracked files git must ignore, e.g. {found[:3]}"


@needs_git
def test_results_fit_in_a_clone() -> None:
    files = TRACKED or []
    objects = _git("ls-files", "-s", "-z", "--", "results").split("\0")[:-1]
    names = "\n".join(line.split()[1] for line in objects) + "\n"
    sizes = _git("cat-file", "--batch-check=%(objectsize)", stdin=names).split()
    total = sum(int(s) for s in sizes)
    assert len(files) <= MAX_FILES, f"results/ tracks {len(files)} files, at most {MAX_FILES}"
    assert total <= MAX_BYTES, f"results/ tracks {total / 2**20:.1f} MB, at most 36 MB"
