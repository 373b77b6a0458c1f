"""`ab`: two sides measured in the same session, cell by cell in interleaved pairs
(harness/measure/ab.py), then judged (harness/analysis/ab.py). A side is the `experiments`
code of a revision, of another checkout or of this working tree (`--a`, `--b`), and a config
(`--b-config` gives B its own). Writes results/ab/<name>/<stamp>/ab.json and ab.md."""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from experiments.workload import init_process
from harness import machine
from harness.analysis.ab import format_ab, judge
from harness.commands.measuring import in_its_environment, measuring
from harness.config import Config, load_config
from harness.errors import HarnessError
from harness.measure.ab import PacedChild, measure_cell
from harness.measure.ab_sides import Code, Side, code_of
from harness.measure.interrupt import Interrupted, interruptible
from harness.measure.sweep import Sweep
from harness.plan import inputs
from harness.plan.cells import Cell, plan_cells, runnable
from harness.plan.estimate import calibrate
from harness.rundir import ab_file, folders
from harness.rundir.ab_file import ABRecord, SideRecord
from harness.schema import utc_now
from harness.stats.precision import LEVEL

ROOT = folders.RESULTS_ROOT / "ab"
MIN_PAIRS = 3


def main(args: argparse.Namespace) -> int:
    if args.pairs < MIN_PAIRS:
        raise HarnessError("--pairs", None, f"{args.pairs} pairs judge nothing", "give 12 or more")
    paths = (args.config, args.b_config or args.config)
    read = [_inspected(load_config(Path(p)), p) for p in dict.fromkeys(paths)]
    configs = (read[0], read[-1])
    cells = _cells(configs[0][0], configs[1][0], args)
    in_its_environment(configs[0][0])
    init_process(configs[0][0].cv2_threads)  # before calibrating, as `run` does
    with measuring("ab", args), tempfile.TemporaryDirectory(prefix="augscale-ab-") as tmp:
        scratch = Path(tmp)
        codes = code_of(args.a, "--a", scratch / "code"), code_of(args.b, "--b", scratch / "code")
        folder = _folder(configs[0][0], args.out)
        sides = _sides(paths, configs, codes, folder, scratch)
        record = _record(args, sides, cells, configs[0][0].name)
        ab_file.write(folder, record)
        print(f"A/B of {len(cells)} cells, {args.pairs} pairs each, into {folder}")
        if note := _pairs_note(args.pairs, len(cells)):
            print(f"Warning: {note}")
        _measure(sides, cells, args.pairs, folder, record)
    text = format_ab(judge(record))
    ab_file.write_text(folder, text)
    print(text, end="")
    return 130 if not record.ended_at else 0


def _inspected(config: Config, path: str) -> tuple[Config, inputs.Inputs]:
    found = inputs.inspect(config, path)
    return inputs.with_folder_size(config, found), found


def _pairs_note(pairs: int, cells: int) -> str:
    """Whether `pairs` can give each cell's interval the coverage that makes all `cells`
    together cover 95%: the widest signed-rank interval of n pairs covers 1 - 2^(1-n)."""
    needed = math.ceil(1 + math.log2(cells / (1 - LEVEL)))
    if pairs >= needed:
        return ""
    return (
        f"{pairs} pairs cannot judge {cells} cells at 95% together: no cell will be flagged; "
        f"give --pairs {needed} or more"
    )


def _folder(config: Config, out: str | None) -> Path:
    folder = Path(out) if out else ROOT / config.name / datetime.now().strftime("%Y%m%d-%H%M%S")
    folders.require_empty(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sides(
    paths: tuple[str, str],
    configs: tuple[tuple[Config, inputs.Inputs], tuple[Config, inputs.Inputs]],
    codes: tuple[Code, Code],
    folder: Path,
    scratch: Path,
) -> list[Side]:
    """Each side's sweep: its config's images prepared once per config, its calibration (for
    timeouts and `batch: auto`) made by this harness's code, so equal configs get equal sizes."""
    prepared: dict[str, tuple] = {}
    sides = []
    for name, (config, found), code, path in zip("AB", configs, codes, paths, strict=True):
        if path not in prepared:
            found = inputs.prepare(config, found, scratch / f"inputs-{name}")
            prepared[path] = (found, calibrate(config, found.n_images, crowd=False))
        found, costs = prepared[path]
        place = config.model_copy(update={"scratch_dir": None})
        cores = machine.usable_cores()
        sweep = Sweep(place, folder / name, found.dirs, found.n_images, costs, cores)
        sides.append(Side(name, code, path, sweep))
    return sides


def _cells(config_a: Config, config_b: Config, args: argparse.Namespace) -> list[Cell]:
    a, b = runnable(plan_cells(config_a)), runnable(plan_cells(config_b))
    if {c.id for c in a} != {c.id for c in b}:
        raise HarnessError(
            args.b_config,
            None,
            f"its cells differ from those of {args.config}",
            "give B a config with the same strategies, workers, saving and image sizes",
        )
    if args.only:
        unknown = sorted(set(args.only) - {c.strategy for c in a})
        if unknown:
            raise HarnessError(
                "--only",
                None,
                f"{', '.join(unknown)} is not a strategy of {args.config}",
                f"give one of {', '.join(sorted({c.strategy for c in a}))}",
            )
        a = [c for c in a if c.strategy in args.only]
    return a


def _record(args: argparse.Namespace, sides: list[Side], cells: list[Cell], name: str) -> ABRecord:
    return ABRecord(
        name=name,
        started_at=utc_now(),
        pairs=args.pairs,
        sides={
            s.name: SideRecord(
                code=s.code.source,
                package=str(s.code.package),
                config=s.config_path,
                config_text=Path(s.config_path).read_text(),
            )
            for s in sides
        },
        cells=[{**asdict(c), "id": c.id} for c in cells],
        host=machine.host_info(),
        versions=machine.versions(),
    )


def _measure(
    sides: list[Side], cells: list[Cell], pairs: int, folder: Path, record: ABRecord
) -> None:
    """Every cell's pairs, ab.json rewritten after each run; an interrupt keeps what ran."""

    def on_run(row: dict) -> None:
        record.runs.append(row)
        ab_file.write(folder, record)

    try:
        with interruptible():
            for cell in cells:
                children = {s.name: PacedChild(s, cell, pairs, folder) for s in sides}
                measure_cell(cell, children, pairs, on_run)
    except Interrupted as err:
        print(f"Interrupted by {err.args[0]}; the pairs measured are kept in {folder}")
        return
    record.ended_at = utc_now()
    ab_file.write(folder, record)
