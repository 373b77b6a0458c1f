"""One module per parallel strategy. Adding a strategy = adding one file here (and a test).

Each module defines:
    NAME: str               the name used in configs and reports (e.g. "P_1")
    SUMMARY: str            one line for the report
    SAVING_ONLY: bool       True if the strategy only makes sense when saving (P_Q)
    MIN_WORKERS: int        smallest worker count it can run with
    run(job, workers, ctx) -> Phases
                            the timed call: list the input folder, augment every
                            (image, augmentation) pair, save if job.saving, join everything.
and optionally:
    IN_PROCESS: bool        True if the work runs inside the main process (sequential, threads):
                            its CPU time is the workers', not dispatch
    session(job, workers, ctx) -> context manager
                            entered once per cell, outside the timed region (e.g. starting a
                            Dask cluster); what it yields is passed as run(..., session=it).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def _discover() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.NAME] = module
    return found


STRATEGIES: dict[str, ModuleType] = _discover()


def get(name: str) -> ModuleType:
    return STRATEGIES[name]


def in_process(name: str) -> bool:
    return bool(getattr(STRATEGIES.get(name), "IN_PROCESS", False))


def skip_reason(name: str, workers: int, saving: bool) -> str | None:
    """Why a (strategy, workers, saving) cell cannot run, or None if it can."""
    module = STRATEGIES[name]
    if module.SAVING_ONLY and not saving:
        return f"{name} only saves (as in the study)"
    if workers < module.MIN_WORKERS:
        return f"{name} needs at least {module.MIN_WORKERS} workers"
    return None
