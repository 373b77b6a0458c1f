"""What earlier runs on this machine say about the next one: how much a cell's runs vary; and
which run folders sit beside a run (`siblings`), where the between-session levels of the report
and of `compare` are read.

A precision target records runs until a cell's interval is narrow enough, so how many runs a
cell needs depends on how much its runs vary, which a calibration of a few seconds cannot see.
The plan takes it from the config's earlier run folders measured on this machine (the same CPU
model and core counts): the median CV of their cells at W <= usable cores. Only the estimate
uses it; the stop rule does not. A folder that cannot be read is passed over: it only plans.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.rundir.meta import read_run_meta
from harness.rundir.store import META, RUNS, read_table
from harness.stats import medians

RECENT = 3  # the newest run folders asked: the machine's state drifts over days
SAME_MACHINE = ("cpu_model", "physical_cores", "logical_cores")
MIN_RUNS = 3  # a cell's CV from fewer runs says little
MIN_SESSIONS = 3  # a spread between sessions from fewer says little


@dataclass(frozen=True)
class Noise:
    """The run-to-run CV of earlier cells at W <= usable cores, and where it was measured."""

    cv: float
    cells: int
    folders: tuple[Path, ...]

    def describe(self) -> str:
        where = ", ".join(str(f) for f in self.folders)
        return f"CV {self.cv:.1%} over {self.cells} cells at W <= the usable cores in {where}"


def earlier_noise(root: Path, name: str, host: dict, cores: int) -> Noise | None:
    """The noise of the newest RECENT run folders of config `name` under `root` measured on a
    machine like `host`; None when there are none with a cell to judge by."""
    found = []
    for meta_path in sorted(Path(root).glob(f"*/{META}")):
        folder = meta_path.parent
        if folder.is_symlink():
            continue  # `latest` is another folder's name
        try:
            meta = read_run_meta(folder)
        except HarnessError:
            continue
        if meta.config.name == name and same_machine(meta.host.model_dump(), host):
            found.append((str(getattr(meta, "started_at", "")), folder))
    cvs, used = [], []
    for _, folder in sorted(found)[-RECENT:]:
        cell_cvs = _cell_cvs(folder, cores)
        if cell_cvs:
            cvs += cell_cvs
            used.append(folder)
    if not cvs:
        return None
    return Noise(float(np.median(cvs)), len(cvs), tuple(used))


def same_machine(old: dict, new: dict) -> bool:
    return all(old.get(key) == new.get(key) for key in SAME_MACHINE)


def _cell_cvs(folder: Path, cores: int) -> list[float]:
    try:
        runs = read_table(folder / RUNS, ["cell_id", "status", "wall_s", "workers"])
    except HarnessError:
        return []
    ok = runs[runs["status"].eq("ok") & runs["workers"].le(cores)]
    cvs = [medians.cv(w) for _, w in ok.groupby("cell_id")["wall_s"] if len(w) >= MIN_RUNS]
    return [cv for cv in cvs if cv > 0]


def siblings(*runs: Path) -> list[Path]:
    """The other run folders beside these (not `latest`, not the runs themselves)."""
    mine = {r.resolve() for r in runs}
    found = {
        p.resolve()
        for r in runs
        for p in r.resolve().parent.iterdir()
        if p.is_dir() and not p.is_symlink() and (p / META).is_file()
    }
    return sorted(found - mine)
