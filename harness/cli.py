"""python -m harness run|report|verify ..."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from harness.config import Config, load_config
from harness.errors import HarnessError

RESULTS_ROOT = Path("results")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def prepare_images(config: Config) -> dict[tuple[int, int], Path]:
    """The image folder for every size the sweep needs (generated once, then cached)."""
    from harness.images import ensure_images

    if config.images.input_dir is not None:
        return {size: config.images.input_dir for _, size in config.sweep} | {config.base_size: config.images.input_dir}
    sizes = {config.base_size} | {size for _, size in config.sweep}
    return {s: ensure_images(s[0], s[1], config.images.count, config.images.format) for s in sorted(sizes)}


def n_images(config: Config) -> int:
    from experiments.workload import list_images

    if config.images.input_dir is not None:
        return len(list_images(config.images.input_dir))
    return config.images.count


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
    if run_dir.exists() and any(run_dir.iterdir()):
        raise HarnessError(str(run_dir), None, "the output folder exists and is not empty", "give a new --out folder, or omit --out to get results/<name>/<timestamp>")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def point_latest(run_dir: Path) -> None:
    latest = run_dir.parent / "latest"
    if run_dir.parent.parent.resolve() != (RESULTS_ROOT.resolve()):
        return
    tmp = run_dir.parent / ".latest.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    tmp.replace(latest)


def print_plan(config: Config, cells: list, sweep_est: object) -> None:  # noqa: ANN001
    from harness.plan import runnable

    todo = runnable(cells)
    runs = config.warmup + config.repeats
    print(f"Plan for {config.name} ({config.kind} scaling): {len(todo)} cells x ({config.warmup} warm-up + {config.repeats} recorded) runs, each cell in a fresh process")
    for cell in cells:
        if cell.skip:
            print(f"  skip {cell.id:<34} {cell.skip}")
        else:
            print(f"  run  {cell.id:<34} ~{sweep_est(cell):7.1f} s per run")
    total = sum(sweep_est(c) for c in todo) * runs
    print(f"Estimated duration: {_duration(total)} (a lower bound: calibrated here, contention not modelled)")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def cmd_run(args: argparse.Namespace) -> int:
    from harness import machine, store
    from harness.estimate import calibrate
    from harness.plan import plan_cells, runnable
    from harness.report import write_report
    from harness.runner import Sweep, run_sweep

    config = load_config(args.config)
    cells = plan_cells(config)
    count = n_images(config)
    costs = calibrate(config.images.format, config.seed)
    estimate = Sweep(config, Path("."), {}, count, costs, machine.physical_cores()).run_estimate
    print_plan(config, cells, estimate)
    if args.dry_run:
        return 0
    run_dir = new_run_dir(config, args.out)
    sweep = Sweep(config, run_dir, prepare_images(config), count, costs, machine.physical_cores())
    meta = {
        "config": config.model_dump(mode="json"),
        "config_file": str(args.config),
        "config_text": Path(args.config).read_text(),
        "host": machine.host_info(),
        "versions": machine.versions(),
        "git_commit": machine.git_commit(),
        "n_images": count,
        "skipped": [{"strategy": c.strategy, "workers": c.workers, "saving": c.saving, "reason": c.skip} for c in cells if c.skip],
        "started_at": _now(),
    }
    store.write_meta(run_dir, meta)
    print(f"Writing to {run_dir}")
    bad = run_sweep(sweep, runnable(cells))
    store.write_meta(run_dir, {**meta, "ended_at": _now()})
    write_report(run_dir)
    point_latest(run_dir)
    print(f"Report: {run_dir / 'report.md'}")
    if bad:
        print(f"{bad} run(s) did not finish ok; see the report's notes.", file=sys.stderr)
    return 1 if bad else 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import write_report

    for path in write_report(Path(args.run_dir)):
        print(path)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.verify import verify

    config = load_config(args.config)
    ok = verify(config, prepare_images(config))
    print("all strategies match sequential" if ok else "MISMATCH: some strategy differs from sequential")
    return 0 if ok else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness", description="Scaling harness for parallel image augmentation")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a sweep from a YAML config, then write its report")
    run.add_argument("config")
    run.add_argument("--out", help="run folder (default results/<name>/<timestamp>)")
    run.add_argument("--dry-run", action="store_true", help="print the plan and estimate only")
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="re-render a run folder's report from runs.parquet")
    rep.add_argument("run_dir")
    rep.set_defaults(func=cmd_report)
    ver = sub.add_parser("verify", help="check every strategy produces the same images as sequential")
    ver.add_argument("config")
    ver.set_defaults(func=cmd_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as err:
        print(err.line(), file=sys.stderr)
        return err.exit_code
