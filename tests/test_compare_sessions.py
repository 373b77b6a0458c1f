"""compare on the committed paired sessions of quick_strong (results/quick_strong): a copy of
one session with every P_2 run made slower, nothing else changed, against another session; and
two unchanged sessions. The between-session level comes from the other paired sessions, never
from the two compared nor from a folder measured in sequential order."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis.compare import compare_runs
from harness.analysis.compare_levels import FROM_SESSIONS
from harness.analysis.compare_text import WIDTH, format_compare
from harness.rundir import store

SESSIONS = Path(__file__).resolve().parents[1] / "results" / "quick_strong"
A, B = SESSIONS / "20261205-082542", SESSIONS / "20261205-111158"
OTHERS = [SESSIONS / n for n in ("20261204-220530", "20261205-000535", "20261205-030335")]
OTHERS += [SESSIONS / "20261205-073846"]

pytestmark = pytest.mark.skipif(not B.is_dir(), reason="the committed quick_strong sessions")


def slim_copy(src: Path, dst: Path) -> Path:
    """meta.json, runs.parquet and tables/ of a run folder: what compare reads."""
    dst.mkdir(parents=True)
    for name in (store.META, store.RUNS):
        shutil.copy(src / name, dst / name)
    shutil.copytree(src / "tables", dst / "tables")
    return dst


def doctored(tmp_path: Path, factor: float) -> Path:
    """B with every P_2 run `factor` times slower in runs.parquet."""
    folder = slim_copy(B, tmp_path / f"p2_x{factor}")
    runs = pd.read_parquet(folder / store.RUNS)
    runs.loc[runs["strategy"].eq("P_2"), "wall_s"] *= factor
    runs.to_parquet(folder / store.RUNS)
    return folder


def flagged(frame: pd.DataFrame) -> set[tuple]:
    rows = frame[frame["flagged"]]
    return set(zip(rows["strategy"], rows["saving"], rows["workers"], strict=True))


def test_p2_made_30_percent_slower_is_flagged_at_every_w_up_to_the_cores(tmp_path):
    c = compare_runs(A, doctored(tmp_path, 1.3), spread_from=OTHERS)
    cells = c.speedups
    p2 = cells[cells["strategy"].eq("P_2")]
    assert cells["workers"].le(c.cores).sum() == 9 and c.cores == 2
    assert p2.loc[p2["workers"].le(c.cores), "flagged"].all()
    assert {s for s, _, _ in flagged(cells)} == {"P_2"}
    assert np.allclose(p2["ratio"], (p2["b"] / p2["a"]))
    assert c.levels["cells"].source == FROM_SESSIONS and len(c.levels["cells"].folders) == 4
    text = format_compare(c)
    assert "P_2 W = 2 saving: 24% slower [21%, 26%]" in text
    assert text.index("P_2 W = 2 saving: 24% slower") < text.index("Resolution:")
    assert max(len(line) for line in text.splitlines()[2:]) <= WIDTH  # but the two paths


def test_p2_made_10_percent_slower_is_flagged_where_the_resolution_allows(tmp_path):
    c = compare_runs(A, doctored(tmp_path, 1.1), spread_from=OTHERS)
    cells = c.speedups
    fit = cells[cells["workers"].le(c.cores)]
    p2 = fit[fit["strategy"].eq("P_2")]
    change = np.abs(np.log(p2["ratio"]))
    assert ((np.exp(change) - 1 > p2["resolution"]) == p2["flagged"]).all()
    assert fit["resolution"].median() < 0.05  # so a 10% change should show, and it does
    assert p2["flagged"].all()
    assert {s for s, _, _ in flagged(cells)} == {"P_2"}
    assert "Resolution: between these two sessions of quick_strong" in format_compare(c)


def test_two_unchanged_sessions_differ_in_at_most_one_cell():
    c = compare_runs(A, B)  # the level from the four other sessions beside them
    assert len(c.speedups) == 14 and len(c.times) == 16
    assert c.speedups["flagged"].sum() <= 1
    assert {A, B}.isdisjoint(c.levels["cells"].folders)
    text = format_compare(c)
    assert "no cell's speedup differs" in text
    assert "Absolute times (drift-prone" in text


def test_the_level_leaves_out_folders_measured_in_sequential_order(tmp_path):
    folders = [slim_copy(f, tmp_path / f.name) for f in OTHERS]
    runs = pd.read_parquet(folders[0] / store.RUNS)
    runs.assign(round=np.nan).to_parquet(folders[0] / store.RUNS)  # as if not paired
    c = compare_runs(A, B, spread_from=folders)
    assert set(c.levels["cells"].folders) == set(folders[1:])
    c = compare_runs(A, B, spread_from=folders[:2])  # one paired session is not enough
    assert c.levels["cells"].source != FROM_SESSIONS
    assert "taken from A and B themselves" in format_compare(c)
