"""`ab.json` in an A/B folder (`augscale ab`, results/ab/<name>/<stamp>/): both sides, the
cells and every recorded run, rewritten atomically after each run so an interrupted A/B keeps
what it measured. A damaged, foreign or newer file is refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.errors import HarnessError
from harness.rundir import store

FILE = "ab.json"
TEXT = "ab.md"
FORMAT = 1


class SideRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str  # what the side imported `experiments` from, in words
    package: str  # the folder of that package
    config: str  # the config file's path as given
    config_text: str  # the config as read (its YAML)


class ABRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT
    name: str  # config A's name
    started_at: str
    pairs: int  # asked for, per cell
    sides: dict[str, SideRecord]  # "A", "B"
    cells: list[dict[str, Any]]  # schema.Cell's fields, in the order measured
    host: dict[str, Any]
    versions: dict[str, Any]
    runs: list[dict[str, Any]] = []  # one per recorded run: cell_id, side, pair, position, ...
    ended_at: str = ""  # "" while it runs, or when it was interrupted


def write(folder: Path, record: ABRecord) -> Path:
    return store.write_model(Path(folder) / FILE, record)


def read(folder: Path) -> ABRecord:
    fix = "run the A/B again (augscale ab)"
    found = store.read_model(Path(folder) / FILE, ABRecord, FORMAT, "an A/B record", fix)
    if found is None:
        raise HarnessError(str(folder), None, f"holds no {FILE}", "give an A/B folder")
    return found


def write_text(folder: Path, text: str) -> Path:
    path = Path(folder) / TEXT
    store.replace_text(path, text)
    return path
