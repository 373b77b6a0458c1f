"""The typed run meta: every committed run folder's meta.json loads as a RunMeta, and a stored
config re-validates as a Config without loading plugins or asking the strategy registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments import strategies
from harness import machine
from harness.analysis.processes import usable_cores
from harness.config import Config
from harness.errors import HarnessError
from harness.rundir import store
from harness.rundir.meta import RunMeta, read_run_meta, run_meta, stored_config

ROOT = Path(__file__).resolve().parent.parent
RUN_DIRS = sorted(
    p.parent for p in (ROOT / "results").glob("*/*/meta.json") if not p.parent.is_symlink()
)


def test_there_are_committed_run_folders():
    assert len(RUN_DIRS) >= 21


@pytest.mark.parametrize("run_dir", RUN_DIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_committed_meta_loads_typed(run_dir):
    meta = read_run_meta(run_dir)
    raw = store.read_meta(run_dir)
    assert isinstance(meta.config, Config)
    assert meta.config == Config.model_validate(raw["config"])
    assert meta.config.kind == raw["config"]["kind"]
    assert meta.host.physical_cores == raw["host"]["physical_cores"]
    assert len(meta.sessions) == len(raw.get("sessions", []))
    assert meta.git_commit == raw["git_commit"]  # a key the model does not name is kept


def test_a_stored_config_naming_a_missing_plugin_still_validates():
    data = {
        "name": "p",
        "kind": "strong",
        "workers": [2],
        "strategies": ["NOT_INSTALLED"],
        "plugins": ["no_such_augscale_plugin"],
        "options": {"NOT_INSTALLED": {"x": 1}},
    }
    config = stored_config({"config": data})
    assert config.labels == ["NOT_INSTALLED"]
    assert "NOT_INSTALLED" not in strategies.names()


def test_entries_are_parsed_once_at_validation():
    config = Config.model_validate(
        {"name": "v", "kind": "strong", "workers": [2], "strategies": [{"P_2": {}, "workers": [2]}]}
    )
    assert config.entries is config.entries
    assert config.runs_at("P_2", 2) and config.labels == ["P_2"]


def test_a_damaged_stored_config_is_one_line(tmp_path):
    meta = {"config": {"name": "x", "kind": "strong", "workers": "two"}}
    with pytest.raises(HarnessError) as info:
        run_meta(meta, str(tmp_path / "meta.json"))
    assert "config.workers" in str(info.value) and "\n" not in str(info.value)


def test_a_run_meta_is_returned_as_is():
    meta = RunMeta.model_validate({"config": {"name": "x", "kind": "strong", "workers": [1]}})
    assert run_meta(meta) is meta
    assert meta.last_session.max_runs is None


def test_the_meta_of_a_written_folder_reads_back(tmp_path):
    config = {"name": "x", "kind": "weak", "points": [{"workers": 2, "size": [8, 8]}]}
    store.write_meta(tmp_path, {"config": config, "sessions": [{"started_at": "t", "cells": 3}]})
    meta = read_run_meta(tmp_path)
    assert meta.config.sweep == [(2, (8, 8))] and meta.sessions[0].cells == 3
    assert json.loads((tmp_path / store.META).read_text())["config"] == config


def test_the_commit_is_dirty_for_changed_code_not_for_changed_results(tmp_path, monkeypatch):
    """A run made after another run moved results/<name>/latest is still of clean code."""
    import subprocess

    from harness import machine

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "latest").write_text("run-1\n")
    git("add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "first")
    monkeypatch.setattr(machine, "PROJECT_ROOT", tmp_path)
    (tmp_path / "results" / "latest").write_text("run-2\n")
    assert not machine.git_commit().endswith("-dirty")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert machine.git_commit().endswith("-dirty")


@pytest.mark.parametrize(("affinity", "usable"), [([0, 1], 2), (None, 4), ([0, 1, 2, 3, 4, 5], 4)])
def test_a_stored_host_and_this_machine_count_usable_cores_by_one_rule(
    monkeypatch, affinity, usable
):
    """A stored run's oversubscription threshold is what this machine counts with the same
    physical cores and affinity mask: fewer CPUs in the mask lower it, more do not raise it."""
    monkeypatch.setattr(machine, "physical_cores", lambda: 4)
    monkeypatch.setattr(machine, "cpu_affinity", lambda: affinity)
    config = {"name": "x", "kind": "strong", "workers": [1, 2]}
    meta = {"config": config, "host": {"physical_cores": 4}, "setup": {"affinity": affinity}}
    assert machine.usable_cores() == usable_cores(meta) == usable
