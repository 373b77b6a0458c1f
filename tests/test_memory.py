"""The allocator's page faults: counted per run, warned about with the fix, and the config's
`env:` that carries the fix into every measuring process."""

from __future__ import annotations

import mmap

import pandas as pd

from harness.analysis.run_checks import MALLOC_FIX, page_faults
from harness.config import Config
from harness.measure import hooks, runner
from harness.report.sections.header import env_items


def _runs(sys_s: list[float], faults: list[int]) -> pd.DataFrame:
    n = len(sys_s)
    return pd.DataFrame(
        {
            "cell_id": ["a"] * (n - 1) + ["b"],
            "status": ["ok"] * n,
            "tasks": [1600] * n,
            "t_cpu_s": [2.0] * n,
            "t_sys_s": sys_s,
            "minor_faults": faults,
        }
    )


def test_page_fault_warning_names_the_cell_and_the_fix():
    runs = _runs([0.4, 0.4, 0.02], [370_000, 380_000, 1000])
    (line,) = page_faults(runs)
    assert "1 cell(s)" in line and "20% (a)" in line and MALLOC_FIX in line


def test_with_the_fix_in_env_the_warning_blames_the_strategy_not_the_allocator():
    (line,) = page_faults(_runs([0.4, 0.02], [370_000, 1000]), {"MALLOC_TRIM_THRESHOLD_": "1"})
    assert "keeps the allocator's memory" in line and MALLOC_FIX not in line


def test_no_page_fault_warning_below_either_threshold_or_without_the_columns():
    assert page_faults(_runs([0.4, 0.02], [1000, 1000])) == []  # kernel time, few faults
    assert page_faults(_runs([0.1, 0.02], [370_000, 1000])) == []  # faults, little time
    assert page_faults(_runs([0.4, 0.4], [370_000, 1]).drop(columns="minor_faults")) == []


def test_cpu_time_hook_counts_the_faults_of_fresh_memory():
    hook = hooks.CpuTime(in_process=True)
    with hook, mmap.mmap(-1, 16 * 2**20) as fresh:  # 16 MiB the kernel has not mapped yet
        for offset in range(0, len(fresh), mmap.PAGESIZE):
            fresh[offset] = 1
    columns = hook.columns()
    assert columns["minor_faults"] >= 8  # 4096 pages, or 8 huge ones
    assert 0 <= columns["t_sys_s"] <= columns["t_cpu_s"] + 1e-6


def test_env_reaches_the_child_process(monkeypatch, tmp_path):
    seen = {}

    class Proc:
        pid = 1

    def popen(*args: object, **kwargs: object) -> Proc:
        seen.update(kwargs)
        return Proc()

    monkeypatch.setattr(runner.subprocess, "Popen", popen)
    with open(tmp_path / "log", "w") as log:
        runner.start_child(tmp_path / "spec.json", log, {"MALLOC_TOP_PAD_": "1"})
    assert seen["env"]["MALLOC_TOP_PAD_"] == "1" and "PATH" in seen["env"]
    with open(tmp_path / "log", "w") as log:
        runner.start_child(tmp_path / "spec.json", log, {})
    assert seen["env"] is None  # this process's environment, unchanged


def test_env_is_named_in_the_report_header():
    config = Config.model_validate(
        {
            "name": "t",
            "kind": "strong",
            "images": {"count": 2, "size": [160, 80]},
            "workers": [2],
            "env": {"MALLOC_TOP_PAD_": "268435456"},
        }
    )
    ((key, value),) = env_items(config.env)
    assert key == "Environment" and "`MALLOC_TOP_PAD_=268435456`" in value
    assert env_items({}) == []


def _config_file(tmp_path, **changes: object):
    import yaml

    data = {
        "name": "tiny_overhead",
        "kind": "strong",
        "images": {"count": 2, "size": [160, 80]},
        "augmentations_per_image": 3,
        "strategies": [{"P_2": {"batch": "auto"}}],
        "saving": [False],
        "workers": [2],
        **changes,
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_overhead_on_a_config_uses_its_strategy_and_pipeline(tmp_path, capsys):
    from harness.cli import main

    assert main(["overhead", "--config", str(_config_file(tmp_path)), "--pairs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny_overhead: P_2[batch=auto] W=2: 2 interleaved pairs")


def test_overhead_restarts_itself_in_the_configs_env(tmp_path, monkeypatch):
    from harness.commands import measuring
    from harness.config import load_config

    calls = []
    monkeypatch.setattr(measuring.os, "execve", lambda *a: calls.append(a))
    monkeypatch.delenv("MALLOC_TOP_PAD_", raising=False)
    config = load_config(_config_file(tmp_path, env={"MALLOC_TOP_PAD_": "1"}))
    measuring.in_its_environment(config)
    ((_, argv, env),) = calls
    assert env["MALLOC_TOP_PAD_"] == "1" and argv[0]
    monkeypatch.setenv("MALLOC_TOP_PAD_", "1")
    measuring.in_its_environment(config)
    assert len(calls) == 1  # already in it: no second start
