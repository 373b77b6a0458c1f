"""cells/: the files of each unit (one child process) in a run folder, named by the unit's tag.

`<tag>.spec.json` is what the child was given (schema.CellSpec), `<tag>.jsonl` the JSON line it
wrote per run, `<tag>.log` its output, `<tag>.stop` the stop file (a limit cut the cell) and
`<tag>.judged` the judged file (how many recorded runs the parent has judged). A resume reads
the results files back: recorded runs a killed parent never stored are recovered from them.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import HarnessError
from harness.rundir import store
from harness.schema import Cell, without_trace

CELLS_DIR = "cells"


def unit_file(run_dir: Path, tag: str, suffix: str) -> Path:
    """A unit's file: suffix is .spec.json, .jsonl, .log, .stop or .judged."""
    return Path(run_dir) / CELLS_DIR / f"{tag}{suffix}"


def write_judged(path: Path, judged: int) -> None:
    """How many recorded runs of the unit the parent has judged (atomically: the child reads
    it while it is written)."""
    store.replace_text(path, str(judged))


def slim_results(path: Path) -> None:
    """Drop the per-task traces from a unit's results file once its runs are stored: tasks/
    holds them, and a resume recovers only lines that runs.parquet lacks. A damaged file is
    left as it is, for the resume to report."""
    if not path.is_file():
        return
    text = path.read_text(errors="replace")
    slim = []
    for line in text[: text.rfind("\n") + 1].splitlines():
        try:
            run = json.loads(line)
        except ValueError:
            return
        slim.append(json.dumps(without_trace(run)))
    store.replace_text(path, "".join(f"{line}\n" for line in slim))


def recorded_units(run_dir: Path) -> list[tuple[Cell, list[dict]]]:
    """Every unit's cell and recorded runs, all read before the caller writes anything: a
    damaged file stops a resume in one line (exit 2) with nothing stored touched."""
    return [
        (spec_cell(spec), recorded_lines(results))
        for spec, results in unit_files(Path(run_dir) / CELLS_DIR)
    ]


def readable_for_resume(run_dir: Path) -> set[tuple[str, int]]:
    """Read every stored file a resume needs before anything runs (a damaged one stops it in
    one line); the (cell_id, repeat) pairs already done."""
    done = store.done_pairs(run_dir)
    store.load_tasks(run_dir)
    recorded_units(run_dir)
    return done


def unit_files(cells_dir: Path) -> list[tuple[Path, Path]]:
    """(spec, results) of every unit that wrote results; the results file beside its spec, so a
    moved or copied run folder still finds them."""
    pairs = []
    for results in sorted(cells_dir.glob("*.jsonl")) if cells_dir.is_dir() else []:
        spec = results.with_name(results.name.removesuffix(".jsonl") + ".spec.json")
        if not spec.is_file():
            raise HarnessError(
                str(spec),
                None,
                f"missing, so the runs in {results.name} cannot be matched to their cell",
                f"restore it from a complete copy of the run folder, or delete {results} "
                "(its runs already in runs.parquet are kept; the others run again)",
            )
        pairs.append((spec, results))
    return pairs


def spec_cell(path: Path) -> Cell:
    try:  # a CellSpec, or format 1's dict: the same `cell` key
        return Cell(**json.loads(path.read_text())["cell"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise HarnessError(
            str(path),
            "cell",
            f"cannot be read, it is damaged or not a cell spec ({type(err).__name__}: {err})",
            "restore it from a complete copy of the run folder",
        ) from None


def recorded_lines(path: Path) -> list[dict]:
    """The recorded runs of a results file; an unfinished last line (the child was killed while
    writing it) is left out, any other damage is an error."""
    text = path.read_text(errors="replace")
    lines = text[: text.rfind("\n") + 1].splitlines()
    found = []
    for number, line in enumerate(lines, 1):
        try:
            run = json.loads(line)
            if run["kind"] == "recorded":
                found.append({**run, "repeat": int(run["repeat"]), "status": str(run["status"])})
        except (ValueError, KeyError, TypeError) as err:
            raise HarnessError(
                f"{path}:{number}",
                None,
                f"a damaged line ({type(err).__name__}: {err})",
                f"restore the file from a complete copy of the run folder, or delete {path} "
                "(its runs already in runs.parquet are kept; the others run again)",
            ) from None
    return found
