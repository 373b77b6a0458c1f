"""The run folder: runs.parquet (one row per recorded run), the per-task trace and meta.json, all
written atomically; meta.json is migrated to the current format on read (harness/migrations.py).

While a sweep runs, each recorded run's trace is a file of its own in tasks/, so a write does not
grow with the sweep; when the sweep ends they are packed into one compressed tasks.parquet, the
form a run folder is kept and committed in (docs/RESULTS.md, "What is committed")."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TypeVar

import pandas as pd
from pydantic import BaseModel, ValidationError

from experiments.workload import TASK_FIELDS
from harness.errors import HarnessError
from harness.migrations import FORMAT_VERSION, read_meta_file
from harness.schema import (
    BASE_RUN_COLUMNS,
    TASK_COLUMNS,
    TASK_KINDS,
    TASKS_DIR,
    TASKS_FILE,
    order_run_columns,
)

M = TypeVar("M", bound=BaseModel)

RUNS = "runs.parquet"
META = "meta.json"


def _replace(path: Path, write: object) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)  # type: ignore[operator]
    os.replace(tmp, path)


def replace_text(path: Path, text: str) -> None:
    """A small file of the run folder (e.g. seeds.json), written atomically."""
    _replace(Path(path), lambda p: p.write_text(text))


def load_runs(run_dir: Path) -> pd.DataFrame:
    path = Path(run_dir) / RUNS
    if not path.is_file():
        return pd.DataFrame(columns=BASE_RUN_COLUMNS)
    return read_table(path, ["cell_id", "repeat", "status", "wall_s"])


def read_table(path: Path, needed: list[str]) -> pd.DataFrame:
    """A stored parquet table, or one line saying why it cannot be used: truncated or damaged
    (e.g. copied half-way), or not this harness's (a column it needs is missing)."""
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises many kinds; all mean "damaged"
        raise HarnessError(
            str(path),
            None,
            f"cannot be read, it is damaged or truncated ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})",
            "restore it from a complete copy of the run folder; nothing was written to it",
        ) from None
    if missing := [c for c in needed if c not in frame.columns]:
        raise HarnessError(
            str(path),
            None,
            f"not a table this harness wrote (no column {', '.join(missing)})",
            "give a run folder made by `python -m harness run`",
        )
    return frame


def done_pairs(run_dir: Path) -> set[tuple[str, int]]:
    """(cell_id, repeat) pairs that already have an ok run."""
    runs = load_runs(run_dir)
    ok = runs[runs["status"].eq("ok")]
    return set(zip(ok["cell_id"], ok["repeat"].astype(int), strict=True))


def replace_runs(run_dir: Path, rows: list[dict]) -> pd.DataFrame:
    """Store rows, replacing any earlier row of the same (cell_id, repeat): one row per pair."""
    if not rows:
        return load_runs(run_dir)
    new = pd.DataFrame(rows)
    old = load_runs(run_dir)
    if not old.empty:
        keys = set(zip(new["cell_id"], new["repeat"], strict=True))
        old = old[[k not in keys for k in zip(old["cell_id"], old["repeat"], strict=True)]]
    frame = new if old.empty else pd.concat([old, new], ignore_index=True)
    frame = frame[order_run_columns(list(frame.columns))]
    _replace(Path(run_dir) / RUNS, lambda p: frame.to_parquet(p, index=False))
    return frame


# A trace row as stored: workload.TASK_FIELDS, `part` stored as `kind`, times as *_s.
TASK_ROW = [
    "kind" if f == "part" else f if f in ("i", "k", "lane") else f"{f}_s" for f in TASK_FIELDS
]  # experiments.workload.TASK_FIELDS, stored
SPAN_ROW = ["span", "lane", "start_s", "end_s"]


def task_frame(cell_id: str, repeat: int, line: dict) -> pd.DataFrame:
    """A child's JSON line (its `trace` and `spans`) as rows of tasks.parquet."""
    parts = []
    if line.get("trace"):
        tasks = pd.DataFrame(line["trace"], columns=TASK_ROW)
        parts.append(tasks.assign(kind=tasks["kind"].map(TASK_KINDS), span=""))
    if line.get("spans"):
        parts.append(pd.DataFrame(line["spans"], columns=SPAN_ROW).assign(kind="main", i=-1, k=-1))
    if not parts:
        return pd.DataFrame(columns=list(TASK_COLUMNS))
    frame = pd.concat(parts, ignore_index=True).assign(cell_id=cell_id, repeat=repeat)
    zeros = {c: 0.0 for c in TASK_COLUMNS if c.endswith("_s")}
    return frame.reindex(columns=list(TASK_COLUMNS)).fillna(zeros)


TRACE_KEYS = ["cell_id", "repeat", "kind"]


def load_tasks(run_dir: Path) -> pd.DataFrame | None:
    """The per-task trace, or None for a run folder made before traces existed. Rows come from
    tasks/ (one file per recorded run) and from a tasks.parquet written before that layout; a
    run in both is taken from tasks/."""
    run_dir = Path(run_dir)
    files = sorted((run_dir / TASKS_DIR).glob("*.parquet"))
    legacy = run_dir / TASKS_FILE
    if not files and not legacy.is_file():
        return None
    frames = [read_table(f, TRACE_KEYS) for f in files]
    if legacy.is_file():
        old = read_table(legacy, TRACE_KEYS)
        if frames:
            new = {(f["cell_id"].iat[0], int(f["repeat"].iat[0])) for f in frames if len(f)}
            pairs = zip(old["cell_id"], old["repeat"].astype(int), strict=True)
            old = old[[p not in new for p in pairs]]
        frames.insert(0, old)
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(TASK_COLUMNS))
    return pd.concat(frames, ignore_index=True)


PACKED = {"compression": "zstd", "compression_level": 9}


def pack_tasks(run_dir: Path) -> None:
    """Pack tasks/ into tasks.parquet (with the runs it already holds), then remove tasks/. The
    rows keep the order load_tasks gives, so what is derived from them does not change; a crash
    between the two steps leaves both, which load_tasks reads as before."""
    run_dir = Path(run_dir)
    if not (run_dir / TASKS_DIR).is_dir():
        return
    tasks = load_tasks(run_dir)
    if tasks is not None and len(tasks):
        _replace(run_dir / TASKS_FILE, lambda p: tasks.to_parquet(p, index=False, **PACKED))
    shutil.rmtree(run_dir / TASKS_DIR)


def tasks_path(run_dir: Path, cell_id: str, repeat: int) -> Path:
    return Path(run_dir) / TASKS_DIR / f"{cell_id}-r{repeat}.parquet"


def write_tasks(run_dir: Path, frames: list[pd.DataFrame]) -> None:
    """Store each recorded run's rows in a file of its own, replacing that run's earlier file
    atomically: the cost of a run's write does not grow with the sweep."""
    for frame in frames:
        if not len(frame):
            continue
        path = tasks_path(run_dir, frame["cell_id"].iat[0], int(frame["repeat"].iat[0]))
        path.parent.mkdir(exist_ok=True)
        _replace(path, lambda p, f=frame: f.to_parquet(p, index=False))


def write_meta(run_dir: Path, meta: dict) -> None:
    meta = {**meta, "format_version": FORMAT_VERSION}
    _replace(
        Path(run_dir) / META, lambda p: p.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    )


def read_meta(run_dir: Path) -> dict:
    path = Path(run_dir) / META
    if not path.is_file():
        raise HarnessError(
            str(run_dir),
            None,
            f"no {META} here: not a run folder",
            "give a folder made by `python -m harness run`, e.g. results/<name>/latest",
        )
    meta = read_meta_file(path)
    if not isinstance(meta.get("config"), dict) or "kind" not in meta["config"]:
        raise HarnessError(
            str(path),
            "config",
            "not a run's meta.json (no config with a kind)",
            "restore the file from a complete copy of the run folder",
        )
    return meta


def require_run_dir(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / RUNS).is_file():
        raise HarnessError(
            str(run_dir),
            None,
            f"no {RUNS} here: not a run folder (or nothing finished)",
            "give a folder made by `python -m harness run`, e.g. results/<name>/latest",
        )
    return run_dir


def write_model(path: Path, found: BaseModel) -> Path:
    """A run folder's JSON file from `found`, written atomically; the file read_model reads."""
    replace_text(path, found.model_dump_json(indent=1) + "\n")
    return path


def read_model(path: Path, model: type[M], version: int, what: str, fix: str) -> M | None:
    """A versioned JSON file of the run folder as `model`, None when absent; a damaged, foreign
    or newer file is one line (HarnessError) naming it and `fix`."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise HarnessError(
            str(path), None, f"cannot be read, it is damaged or truncated ({err})", fix
        ) from None
    found = data.get("format_version") if isinstance(data, dict) else None
    if isinstance(found, int) and found > version:
        raise HarnessError(
            str(path),
            "format_version",
            f"written by a newer augscale (version {found}; this one reads up to {version})",
            "read it with the newer augscale, or " + fix,
        )
    try:
        return model.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(map(str, e["loc"])) or None
        raise HarnessError(str(path), where, f"not {what} ({e['msg']})", fix) from None
