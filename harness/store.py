"""The run folder: runs.parquet (one row per recorded run) and meta.json, both written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from harness import RESULT_FORMAT_VERSION
from harness.errors import HarnessError

RUNS = "runs.parquet"
META = "meta.json"

COLUMNS = [
    "cell_id", "strategy", "workers", "saving", "width", "height", "n_images",
    "augmentations_per_image", "repeat", "wall_s", "status", "error",
    "t_read_s", "t_augment_s", "t_save_s", "tasks", "start_method", "started_at",
]


def _replace(path: Path, write: object) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)  # type: ignore[operator]
    os.replace(tmp, path)


def load_runs(run_dir: Path) -> pd.DataFrame:
    path = Path(run_dir) / RUNS
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_parquet(path)


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
    ordered = [c for c in COLUMNS if c in frame] + [c for c in frame if c not in COLUMNS]
    frame = frame[ordered]
    _replace(Path(run_dir) / RUNS, lambda p: frame.to_parquet(p, index=False))
    return frame


def write_meta(run_dir: Path, meta: dict) -> None:
    meta = {"format_version": RESULT_FORMAT_VERSION, **meta}
    _replace(Path(run_dir) / META, lambda p: p.write_text(json.dumps(meta, indent=2, default=str) + "\n"))


def read_meta(run_dir: Path) -> dict:
    path = Path(run_dir) / META
    if not path.is_file():
        raise HarnessError(str(run_dir), None, f"no {META} here: not a run folder", "give a folder made by `python -m harness run`, e.g. results/<name>/latest")
    return json.loads(path.read_text())


def require_run_dir(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / RUNS).is_file():
        raise HarnessError(str(run_dir), None, f"no {RUNS} here: not a run folder (or nothing finished)", "give a folder made by `python -m harness run`, e.g. results/<name>/latest")
    return run_dir
