"""Run folders: results/<name>/<run id>/, the `latest` link, and whether a run may be resumed."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from harness.config import Config
from harness.errors import HarnessError
from harness.rundir.meta import stored_config
from harness.sweep_rules import Order

RESULTS_ROOT = Path("results")
# Keys that change how long or how often we measure, not what a measurement means (`order`
# only between the unpaired orders: _check_order).
RESUME_MAY_CHANGE = {"repeats", "cell_timeout_s", "scratch_dir", "order", "profile"}
SPEED_TOLERANCE = 0.10  # a resume refuses a machine this much faster or slower than the run's
SPEED_ENV = "AUGSCALE_SPEED_TOLERANCE"


def new_run_dir(config: Config, out: str | None) -> Path:
    if out:
        run_dir = Path(out)
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = RESULTS_ROOT / config.name / stamp
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = RESULTS_ROOT / config.name / f"{stamp}-{n}"
    require_empty(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def require_empty(run_dir: Path) -> None:
    if run_dir.exists() and any(run_dir.iterdir()):
        raise HarnessError(
            str(run_dir),
            None,
            "the output folder exists and is not empty",
            "give a new --out folder, or --resume it to finish an interrupted run",
        )


def point_latest(run_dir: Path) -> None:
    """results/<name>/latest -> the newest run (only for runs inside results/)."""
    if run_dir.resolve().parent.parent != RESULTS_ROOT.resolve():
        return
    tmp = run_dir.parent / ".latest.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    tmp.replace(run_dir.parent / "latest")


def check_resumable(meta: dict, config: Config, host: dict, versions: dict, run_dir: Path) -> None:
    """Refuse a resume whose measurements would not be comparable with those already stored.
    A key newer than the run folder takes its default, the behaviour the run was measured under
    (a default that changed has a migration in harness/migrations.py that sets the old one)."""
    stored = stored_config(meta, str(run_dir))
    _check_order(stored.order, config.order, run_dir)
    old, new = stored.model_dump(mode="json"), config.model_dump(mode="json")
    for key in sorted(set(old) | set(new)):
        if key not in RESUME_MAY_CHANGE and old.get(key) != new.get(key):
            raise HarnessError(
                str(run_dir),
                key,
                f"the config differs from the run's ({old.get(key)!r} there, {new.get(key)!r} "
                "now), which changes the measurement",
                "resume with the run's own config (its meta.json holds it as config_text), "
                "or start a new run",
            )
    old_host, old_versions = meta.get("host") or {}, meta.get("versions") or {}
    for key in ("cpu_model", "physical_cores", "logical_cores"):
        if old_host.get(key) != host.get(key):
            raise HarnessError(
                str(run_dir),
                f"host.{key}",
                f"the run was measured on another machine ({old_host.get(key)!r} there, "
                f"{host.get(key)!r} here)",
                "resume on the machine that started it, or start a new run",
            )
    for key, value in versions.items():
        if old_versions.get(key) != value:
            raise HarnessError(
                str(run_dir),
                f"versions.{key}",
                f"{key} is {value} here but was {old_versions.get(key)} in the run",
                "resume in the environment that started it, or start a new run",
            )


def _check_order(old: Order, new: Order, run_dir: Path) -> None:
    """`order` may change between the unpaired orders only: runs in paired rounds and runs
    outside them give no speedup together, and a race's rounds are its own."""
    if old != new and (old.paired or new.paired):
        raise HarnessError(
            str(run_dir),
            "order",
            f"the run was measured in `order: {old}`; resuming in `order: {new}` would mix "
            "its runs with runs of another design",
            f"write `order: {old}` in the config to resume it, or start a new run",
        )


def speed_tolerance() -> float:
    """SPEED_TOLERANCE, or AUGSCALE_SPEED_TOLERANCE (the test suite, whose machine is busy)."""
    return float(os.environ.get(SPEED_ENV) or SPEED_TOLERANCE)


def check_speed(
    meta: dict, probe_s: float, run_dir: Path, again: Callable[[], float] | None = None
) -> float:
    """Refuse a resume on a machine whose speed probe differs from the run's first by more than
    the tolerance: the CPU model and core counts do not tell two VMs 2.4x apart. Load only
    slows a probe, so one out of tolerance is measured twice more and the fastest kept.
    Returns the probe used."""
    first = next((s["calibration"] for s in meta.get("sessions", []) if "calibration" in s), None)
    if not first or not first.get("probe_s") or not probe_s:
        return probe_s
    tolerance = speed_tolerance()
    if abs(probe_s / first["probe_s"] - 1) > tolerance and again is not None:
        probe_s = min(probe_s, again(), again())
    ratio = probe_s / first["probe_s"]
    if abs(ratio - 1) > tolerance:
        raise HarnessError(
            str(run_dir / "meta.json"),
            "sessions[0].calibration.probe_s",
            f"this machine runs the speed probe in {ratio:.2f}x the CPU time of the machine "
            f"that started the run ({probe_s:.3f} s here, {first['probe_s']:.3f} s there; "
            f"more than {tolerance:.0%} apart), so new runs would not be comparable",
            "resume on the machine that started it, with nothing else running (a busy machine "
            "also probes slower), or start a new run",
        )
    return probe_s


def check_inputs(meta: dict, digest: str | None, run_dir: Path) -> str | None:
    """Refuse a resume on other images than the run's; a warning line for a run folder made
    before inputs were hashed (nothing to compare with)."""
    stored = meta.get("inputs_sha256")
    if stored is None:
        return (
            f"{run_dir} records no hash of its inputs (made by an older augscale): "
            "the images cannot be checked against the run's"
        )
    if stored != digest:
        raise HarnessError(
            str(run_dir),
            "inputs_sha256",
            "the input images differ from the run's (a file was added, removed or changed "
            "since it started), so new runs would not measure the same work",
            "restore the run's images, or start a new run",
        )
    return None
