"""`augscale ab`: the pairing order with a fake executor, the simultaneous intervals and their
false-positive rate on simulated pairs, the sides' code, the stored record, the one-line errors,
and one real A/B in which B's P_2 is made slower."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.analysis.ab import format_ab, judge
from harness.cli import main as cli
from harness.errors import HarnessError
from harness.measure.ab import measure_cell, order_of
from harness.measure.ab_sides import PACKAGE, REPO, code_of
from harness.plan.cells import Cell
from harness.rundir import ab_file
from harness.rundir.ab_file import ABRecord, SideRecord

CELL = Cell("P_2", 2, False, 160, 80)


class FakeChild:
    def __init__(self, name: str, log: list, walls: list[float], fail_at: int | None = None):
        self.name, self.log, self.walls, self.fail_at = name, log, walls, fail_at

    def start(self) -> str:
        self.log.append(("start", self.name))
        return ""

    def run(self, n: int) -> dict:
        self.log.append((self.name, n))
        if n == self.fail_at:
            return {"status": "failed", "error": "boom"}
        return {"status": "ok", "wall_s": self.walls[n]}

    def stop(self) -> None:
        self.log.append(("stop", self.name))


def test_pairs_alternate_which_side_runs_first() -> None:
    assert [order_of(n) for n in range(4)] == [("A", "B"), ("B", "A"), ("A", "B"), ("B", "A")]
    log, rows = [], []
    children = {s: FakeChild(s, log, [1.0] * 3) for s in "AB"}
    measure_cell(CELL, children, 3, rows.append)
    assert log == [
        ("start", "A"), ("start", "B"),
        ("A", 0), ("B", 0), ("B", 1), ("A", 1), ("A", 2), ("B", 2),
        ("stop", "A"), ("stop", "B"),
    ]  # fmt: skip
    assert [(r["side"], r["pair"], r["position"]) for r in rows[:4]] == [
        ("A", 0, 0), ("B", 0, 1), ("B", 1, 0), ("A", 1, 1),
    ]  # fmt: skip
    assert {r["cell_id"] for r in rows} == {CELL.id}


def test_a_failed_run_ends_the_cell_and_both_children_stop() -> None:
    log, rows = [], []
    children = {"A": FakeChild("A", log, [1.0] * 5), "B": FakeChild("B", log, [1.0] * 5, 1)}
    measure_cell(CELL, children, 5, rows.append)
    assert rows[-1]["status"] == "failed" and rows[-1]["side"] == "B" and rows[-1]["pair"] == 1
    assert log[-2:] == [("stop", "A"), ("stop", "B")]
    assert len(rows) == 3


def _record(ratios: dict[str, list[float]], started: str = "2026-12-06T12:00:00") -> ABRecord:
    cells, runs = [], []
    for k, (strategy, values) in enumerate(ratios.items()):
        cell = Cell(strategy, 2, bool(k % 2), 160, 80)
        cells.append({**cell.__dict__, "id": cell.id})
        for n, ratio in enumerate(values):
            for side, wall in (("A", 1.0), ("B", ratio)):
                runs.append({"cell_id": cell.id, "side": side, "pair": n, "status": "ok",
                             "wall_s": wall})  # fmt: skip
    side = SideRecord(code="here", package="/x", config="c.yaml", config_text="")
    return ABRecord(
        name="t", started_at=started, pairs=len(next(iter(ratios.values()))),
        sides={"A": side, "B": side}, cells=cells, host={}, versions={}, runs=runs,
        ended_at="2026-12-06T12:10:00",
    )  # fmt: skip


def test_a_five_percent_slower_cell_is_flagged_and_named_first() -> None:
    rng = np.random.default_rng(3)
    noise = lambda: list(np.exp(rng.normal(0, 0.01, 12)))  # noqa: E731
    record = _record({"P_1": noise(), "P_2": [1.05 * x for x in noise()], "P_Q": noise()})
    j = judge(record)
    assert list(j.flagged["strategy"]) == ["P_2"]
    text = format_ab(j)
    verdict = text.split("\n\n")[1]
    assert verdict.startswith("B against A: 1 of 3 cells changed")
    assert "P_2 W = 2 saving: 4.7% slower [4.3%, 5.4%]" in verdict
    assert "Resolution: a cell is flagged when it changed by more than about" in text


def test_unchanged_sides_flag_a_cell_in_at_most_five_percent_of_runs() -> None:
    """The intervals are simultaneous: 300 simulated A/A runs of 20 cells, 12 pairs each, with
    heavy-tailed pair noise, flag any cell in no more than 5% (with room for 300 draws)."""
    rng = np.random.default_rng(0)
    runs_with_a_flag = 0
    for _ in range(300):
        ratios = {f"S{c}": list(np.exp(0.02 * rng.standard_t(4, 12))) for c in range(20)}
        runs_with_a_flag += bool(judge(_record(ratios)).flagged.shape[0])
    assert runs_with_a_flag / 300 <= 0.08


def test_too_few_pairs_flag_nothing_and_say_so() -> None:
    record = _record({"P_1": [1.5, 1.6, 1.55], "P_2": [1.0, 1.01, 0.99]})
    j = judge(record)
    assert j.flagged.empty
    assert "too few pairs" in " ".join(format_ab(j).split())


def test_an_interrupted_record_says_so_and_a_failed_pair_is_left_out() -> None:
    record = _record({"P_1": [1.0] * 12, "P_2": [1.0] * 12})
    record.runs[0] = {**record.runs[0], "status": "failed", "error": "boom", "wall_s": None}
    record.ended_at = ""
    j = judge(record)
    assert j.cells.loc[0, "pairs"] == 11
    text = format_ab(j)
    assert "Interrupted" in text and "failed: " in text and "boom" in text


def test_the_record_round_trips_and_a_damaged_one_is_one_line(tmp_path: Path) -> None:
    record = _record({"P_1": [1.0] * 3})
    ab_file.write(tmp_path, record)
    assert ab_file.read(tmp_path) == record
    (tmp_path / ab_file.FILE).write_text("{")
    with pytest.raises(HarnessError, match="damaged"):
        ab_file.read(tmp_path)
    with pytest.raises(HarnessError, match="holds no ab.json"):
        ab_file.read(tmp_path / "none")


def test_the_sides_code_a_tree_a_folder_or_a_revision(tmp_path: Path) -> None:
    assert code_of(None, "--a", tmp_path).root == REPO
    with pytest.raises(HarnessError, match="holds no experiments/ package"):
        code_of(str(tmp_path), "--a", tmp_path)
    with pytest.raises(HarnessError, match="neither a folder nor a revision"):
        code_of("no-such-revision-xyz", "--b", tmp_path)
    head = code_of("HEAD", "--b", tmp_path / "code")
    assert (head.package / "strategies" / "p2.py").is_file()
    assert head.source.startswith("revision HEAD (") and head.root.parent == tmp_path / "code"


def _tiny_config(tmp_path: Path, name: str = "t", **changes: object) -> Path:
    data = {
        "name": name,
        "kind": "strong",
        "images": {"count": 2, "size": [160, 80]},
        "augmentations_per_image": 3,
        "strategies": ["P_2"],
        "workers": [1],
        "saving": [False],
        "repeats": 1,
        "warmup": 0,
        "seed": 0,
        **changes,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bad_arguments_are_one_line_with_exit_2(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    config = _tiny_config(tmp_path)
    other = _tiny_config(tmp_path, "u", workers=[2])
    for argv, words in [
        (["ab", str(config), "--pairs", "2"], "--pairs"),
        (["ab", str(config), "--b-config", str(other)], "its cells differ"),
        (["ab", str(config), "--only", "P_9"], "P_9 is not a strategy"),
        (["ab", str(config), "--b", "no-such-revision-xyz", "--out", str(tmp_path / "o")],
         "neither a folder nor a revision"),
    ]:  # fmt: skip
        assert cli(argv) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1 and err.startswith("error:")


SLOWER = """
import time as _time


def _slower(path, job, i, k):
    row = read_augment_save(path, job, i, k)
    _time.sleep(0.05)
    return row
"""


@pytest.mark.slow
def test_a_real_ab_flags_the_side_whose_p2_is_slower(tmp_path: Path) -> None:
    """B is a copy of experiments/ whose P_2 sleeps 50 ms more per task (of a few ms): every
    P_2 cell flagged, the sequential baseline (the same code on both sides) not, and each run
    recorded with the package its side named."""
    copy = tmp_path / "b"
    shutil.copytree(REPO / PACKAGE, copy / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    p2 = copy / PACKAGE / "strategies" / "p2.py"
    text = p2.read_text().replace("pool.starmap(read_augment_save,", "pool.starmap(_slower,")
    p2.write_text(text.replace("\n\ndef run(", SLOWER + "\n\ndef run(", 1))
    out = tmp_path / "ab"
    argv = ["ab", str(_tiny_config(tmp_path)), "--b", str(copy), "--pairs", "8", "--out", str(out)]
    assert cli(argv) == 0
    record = ab_file.read(out)
    j = judge(record)
    assert list(j.flagged["strategy"]) == ["P_2"], format_ab(j)
    packages = {(r["side"], r["code"]) for r in record.runs}
    assert packages == {("A", str((REPO / PACKAGE).resolve())), ("B", str(copy / PACKAGE))}
    assert (out / ab_file.TEXT).read_text().startswith("A/B of t:")
    assert json.loads((out / ab_file.FILE).read_text())["ended_at"]
