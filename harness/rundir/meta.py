"""meta.json typed: the stored config as a `Config`, the sessions that ran the sweep and the host.

Read-only: the runner writes meta.json as a dict (harness/rundir/store.py), and this model keeps
every key it does not name (extra="allow"), so older and newer folders load alike. The config
re-validates without loading plugins or asking the strategy registry (harness/config.py), so a
run whose plugin is not installed here still loads. Read through harness/migrations.py first: a
default that changed since the folder was written is set to the one it ran under there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.config import Config
from harness.errors import HarnessError
from harness.migrations import FORMAT_VERSION
from harness.rundir import store


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Host(_Open):
    """The machine the run was recorded on (harness/machine.py, host_info)."""

    hostname: str | None = None
    cpu_model: str | None = None
    physical_cores: int | None = None
    logical_cores: int | None = None
    memory_gb: float | None = None
    os: str | None = None


class Session(_Open):
    """One `python -m harness run` (or resume) of the sweep: its plan, and once it ended, its
    duration and the cells a budget or the spend cut short."""

    started_at: str | None = None
    ended_at: str | None = None
    estimate_s: float | None = None
    estimate_max_s: float | None = None
    cells: Any = None
    calibration: dict[str, Any] = {}
    max_runs: int | None = None
    budget_s: float | None = None
    planning_cv: float | None = None
    planning_from: list[str] = []
    duration_s: float | None = None
    budget_cut: list[str] = []
    spend_cut: list[str] = []


class RunMeta(_Open):
    """A run folder's meta.json, migrated to the current format."""

    format_version: int = FORMAT_VERSION
    config: Config
    host: Host = Host()
    sessions: list[Session] = []
    setup: dict[str, Any] = {}
    skipped: list[dict[str, Any]] = []
    n_images: int | None = None
    input_inventory: dict[str, Any] | None = None

    @property
    def images_run(self) -> int | None:
        """The images the run timed: n_images as recorded, else the config's count."""
        return self.n_images if "n_images" in self.model_fields_set else self.config.images.count

    @property
    def last_session(self) -> Session:
        """The latest session, or an empty one for a folder made before sessions."""
        return self.sessions[-1] if self.sessions else Session()


def run_meta(meta: dict | RunMeta, where: str = store.META) -> RunMeta:
    """meta.json's dict typed (a RunMeta is returned as is); HarnessError if it does not fit."""
    if isinstance(meta, RunMeta):
        return meta
    try:
        return RunMeta.model_validate(meta)
    except ValidationError as err:
        e = err.errors()[0]
        key = ".".join(str(p) for p in e["loc"]) or None
        msg = e["msg"].removeprefix("Value error, ")
        raise HarnessError(
            where, key, msg, "restore the file from a complete copy of the run folder"
        ) from None


def stored_config(meta: dict | RunMeta, where: str = store.META) -> Config:
    """The config a run was recorded with, re-validated (no plugin is loaded)."""
    return run_meta(meta, where).config


def read_run_meta(run_dir: Path) -> RunMeta:
    """The run folder's meta.json, typed; HarnessError for a missing, damaged or newer file."""
    return run_meta(store.read_meta(run_dir), str(Path(run_dir) / store.META))
