"""The run folder's per-task trace: one file per recorded run while a sweep runs, replaced whole,
packed into one tasks.parquet when it ends; a packed folder and tasks/ files read together."""

import pandas as pd

from harness.rundir import store
from harness.schema import TASK_COLUMNS, TASKS_FILE


def _line(start: float, tasks: int = 3) -> dict:
    row = [0.0, 0.5, 0.5, 0.0, 0.9, 0.0]  # read, augment, save, handoff, cpu, read_cpu
    trace = [[0, 0, k, 11, start + k, start + k + 1, *row] for k in range(tasks)]
    return {"trace": trace, "spans": [["read", 10, 0.0, start]]}


def _frame(cell: str, repeat: int, start: float, tasks: int = 3) -> pd.DataFrame:
    return store.task_frame(cell, repeat, _line(start, tasks))


def test_each_run_gets_its_own_file_and_a_rewrite_replaces_it(tmp_path):
    store.write_tasks(tmp_path, [_frame("a", 0, 1.0), _frame("a", 1, 2.0)])
    store.write_tasks(tmp_path, [_frame("a", 1, 5.0, tasks=2)])
    files = sorted(p.name for p in (tmp_path / "tasks").iterdir())
    assert files == ["a-r0.parquet", "a-r1.parquet"]
    tasks = store.load_tasks(tmp_path)
    assert list(tasks.columns) == list(TASK_COLUMNS)
    again = tasks[tasks["repeat"].eq(1)]
    assert len(again) == 3 and again["start_s"].min() == 0.0  # 2 tasks + 1 span, the new ones
    assert set(again.loc[again["kind"].eq("task"), "start_s"]) == {5.0, 6.0}
    assert pd.read_parquet(tmp_path / "tasks").shape == tasks.shape  # users read the folder whole


def test_a_folder_in_the_old_layout_reads_and_new_runs_win(tmp_path):
    old = pd.concat([_frame("a", 0, 1.0), _frame("b", 0, 1.0)], ignore_index=True)
    old.to_parquet(tmp_path / TASKS_FILE, index=False)
    assert len(store.load_tasks(tmp_path)) == len(old)
    store.write_tasks(tmp_path, [_frame("b", 0, 7.0, tasks=1)])
    tasks = store.load_tasks(tmp_path)
    assert len(tasks[tasks["cell_id"].eq("a")]) == 4
    b = tasks[tasks["cell_id"].eq("b") & tasks["kind"].eq("task")]
    assert b["start_s"].tolist() == [7.0]


def test_no_trace_is_none_and_failed_runs_write_nothing(tmp_path):
    assert store.load_tasks(tmp_path) is None
    store.write_tasks(tmp_path, [store.task_frame("a", 0, {"trace": [], "spans": []})])
    assert store.load_tasks(tmp_path) is None and not (tmp_path / "tasks").exists()


def test_packing_keeps_every_row_in_order_and_removes_the_per_run_files(tmp_path):
    store.write_tasks(tmp_path, [_frame("a", 0, 1.0), _frame("b", 0, 2.0)])
    before = store.load_tasks(tmp_path)
    store.pack_tasks(tmp_path)
    assert not (tmp_path / "tasks").exists() and (tmp_path / TASKS_FILE).is_file()
    pd.testing.assert_frame_equal(store.load_tasks(tmp_path), before)


def test_a_resumed_run_packs_its_new_runs_over_the_packed_ones(tmp_path):
    store.write_tasks(tmp_path, [_frame("a", 0, 1.0), _frame("a", 1, 2.0)])
    store.pack_tasks(tmp_path)
    store.write_tasks(tmp_path, [_frame("a", 1, 9.0, tasks=1), _frame("c", 0, 3.0)])
    expected = store.load_tasks(tmp_path)
    store.pack_tasks(tmp_path)
    tasks = store.load_tasks(tmp_path)
    pd.testing.assert_frame_equal(tasks, expected)
    redone = tasks[tasks["cell_id"].eq("a") & tasks["repeat"].eq(1) & tasks["kind"].eq("task")]
    assert redone["start_s"].tolist() == [9.0]
    store.pack_tasks(tmp_path)  # nothing left to pack: a no-op
    pd.testing.assert_frame_equal(store.load_tasks(tmp_path), expected)
