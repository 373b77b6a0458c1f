"""meta.json as it is written: the run's facts when it starts, and one session per `run` or
resume (its estimate, calibration and limits, then how long it took and what the limits cut).
Plain dicts, exactly as stored; reading them back is harness/rundir/meta.py's job."""

from __future__ import annotations

from pathlib import Path

from harness import machine
from harness.config import Config
from harness.schema import Cell, utc_now
from harness.stats.precision import Target


def new_meta(
    config_path: str, config: Config, cells: list[Cell], input_facts: dict, machine_facts: dict
) -> dict:
    """meta.json of a new run: the config as given and validated, the machine, what is skipped."""
    skipped = [
        {"strategy": c.strategy, "workers": c.workers, "saving": c.saving, "reason": c.skip}
        for c in cells
        if c.skip
    ]
    return {
        "config": config.model_dump(mode="json"),
        "config_file": str(config_path),
        "config_text": Path(config_path).read_text(),
        **machine_facts,
        "git_commit": machine.git_commit(),
        **input_facts,
        "skipped": skipped,
        "started_at": utc_now(),
    }


def resumed_meta(meta: dict, config: Config) -> dict:
    """The meta of a run being resumed: the config it resumes with, and when."""
    resumed = [*meta.get("resumed_at", []), utc_now()]
    return {**meta, "config": config.model_dump(mode="json"), "resumed_at": resumed}


def new_session(
    estimate: dict,
    calibration: dict,
    target: Target,
    budget_s: float | None,
    planning_from: list[Path],
) -> dict:
    """A session as it starts: the plan's estimate (Plan.print), the calibration, the stop
    rule's max after a budget, and the earlier runs whose noise planned the run counts."""
    return {
        "started_at": utc_now(),
        "estimate_s": round(estimate["expected_s"], 1),
        "estimate_max_s": round(estimate["max_s"], 1),
        "cells": estimate["cells"],
        "calibration": calibration,
        "max_runs": target.max,
        "budget_s": budget_s,
        "planning_cv": target.planning_cv,
        "planning_from": [str(f) for f in planning_from] if target.planning_cv else [],
    }


def with_session(meta: dict, session: dict) -> dict:
    return {**meta, "sessions": [*meta.get("sessions", []), session]}


def ended_session(
    meta: dict, duration_s: float, cut: dict[str, set[str]], interrupted: str | None
) -> dict:
    """The meta once its last session ended: how long it took, the cells each limit cut
    (`budget_cut`, `spend_cut`, by limit name), and the signal that interrupted it."""
    session = {
        **meta["sessions"][-1],
        "ended_at": utc_now(),
        "duration_s": round(duration_s, 1),
        "budget_cut": [],
        "spend_cut": [],
        **{f"{name}_cut": sorted(cells) for name, cells in cut.items()},
    }
    ended = {"ended_at": utc_now(), "interrupted": interrupted}
    return {**meta, **ended, "sessions": [*meta["sessions"][:-1], session]}
