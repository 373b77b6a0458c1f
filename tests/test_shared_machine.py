"""Runs that shared the machine: HostCpu measures, around every timed call, the CPU time every
process of the machine used; what the run's own processes did not use, other programs took, and
the report warns about each run where that passed run_checks.OTHERS_CPUS."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis import run_checks
from harness.measure.hooks import CpuTime, HostCpu, around, columns
from harness.rundir.meta import read_run_meta

PAIRED = Path(__file__).resolve().parent / "fixtures" / "runs" / "quick_strong" / "paired"
SPIN = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass\n"


def _measured(seconds: float, body) -> dict[str, float]:  # noqa: ANN001
    hooks = [HostCpu(), CpuTime(in_process=False)]
    with around(hooks):
        body(seconds)
    return columns(hooks)


def _spin_here(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_another_programs_cpu_is_what_the_machine_used_beyond_the_runs_own():
    spinner = subprocess.Popen([sys.executable, "-c", SPIN.format(s=2.0)])
    try:
        time.sleep(0.3)  # the spinner is running before the call starts
        found = _measured(1.0, time.sleep)
    finally:
        spinner.wait()
    others = found["host_busy_s"] - found["t_cpu_s"]
    assert others > 0.5, found  # one CPU kept busy by the spinner for the whole second


def test_the_runs_own_cpu_is_inside_the_machines():
    found = _measured(0.5, _spin_here)
    assert found["t_cpu_s"] >= 0.5
    assert found["host_busy_s"] >= 0.9 * found["t_cpu_s"], found  # /proc/stat counts in ticks


def _runs(others_cpus: list[float], restarts: float | None = None) -> pd.DataFrame:
    wall, own = 2.0, 3.0
    return pd.DataFrame(
        {
            "cell_id": [f"P_1-w2-save-{i}" for i in range(len(others_cpus))],
            "status": "ok",
            "wall_s": wall,
            "t_cpu_s": own,
            "host_busy_s": [own + c * wall for c in others_cpus],
            "worker_restarts": restarts,
        }
    )


@pytest.fixture(scope="module")
def meta():
    return read_run_meta(PAIRED)  # a real run's meta: 2 logical CPUs


def test_a_run_that_shared_the_machine_is_named_with_how_much(meta):
    found = run_checks.shared_machine(_runs([0.05, 0.9, 0.3]), meta)
    assert len(found) == 1
    assert "during 2 run(s) of 2 cell(s), up to 0.9 of 2 logical CPUs" in found[0]
    assert "Fix:" in found[0]


def test_a_quiet_machine_and_older_folders_give_no_warning(meta):
    assert run_checks.shared_machine(_runs([0.0, 0.05, run_checks.OTHERS_CPUS]), meta) == []
    assert run_checks.shared_machine(_runs([0.9]).drop(columns="host_busy_s"), meta) == []


def test_workers_outside_the_runs_processes_are_left_out(meta):
    """A Dask-like executor (worker_restarts recorded): its workers' CPU is not in t_cpu_s."""
    assert run_checks.shared_machine(_runs([1.5], restarts=0.0), meta) == []
