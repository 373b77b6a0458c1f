"""Seed sensitivity: how much the sequential baseline's absolute time depends on the seed's
sample of transforms (`python -m harness seeds CONFIG [--n 5] [--rounds 2] [--run RUN_DIR]`).

Each seed draws another sample of the Compose's random transforms, and a task's cost varies
~50x with what is drawn, so the baseline's time at one seed is one sample of the workload.
Every strategy does the same seeded work, so speedups do not depend on it; absolute times do.
Each (round, seed, saving mode) runs in a fresh child process through the runner (`run_unit`),
with the config's warm-up, and records one run; the rounds, one after another over all seeds,
measure the run-to-run noise the seeds' spread must stand out of. The result is kept as
`seeds.json` in a run folder, written atomically; a damaged, foreign or newer file is refused in
one line.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from experiments.workload import init_process
from harness import machine
from harness.config import Config
from harness.errors import HarnessError
from harness.machine import utc_now
from harness.measure.interrupt import Interrupted, interruptible
from harness.measure.runner import run_unit
from harness.measure.sweep import Sweep
from harness.plan import inputs
from harness.plan.cells import Unit
from harness.plan.estimate import calibrate
from harness.precision import Target
from harness.rundir import store
from harness.rundir.meta import read_run_meta
from harness.schema import BASELINE, Cell

FILE = "seeds.json"
FORMAT = 1
COMPARE = (
    "Absolute times compare only at the same seed on the same machine; speedups are unaffected "
    "because every strategy does the same seeded work."
)
# The keys of a run's config that make the workload the seeds time.
WORKLOAD_KEYS = ("images", "augmentations_per_image", "seed", "cv2_threads")
MODE = {True: "saving", False: "no saving"}
ONE = Target(1, 1)  # one recorded run per child, whatever the config's repeats
# The seeds' spread stands out of the run-to-run noise when it is at least this many times it.
NOISE_FACTOR = 2.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeedRun(_Strict):
    seed: int
    saving: bool
    round: int = 0
    wall_s: float | None  # None when the run did not finish ok
    cpu_s: float | None = None  # the run's CPU time
    steal_s: float | None = None  # CPU time the hypervisor took from this VM meanwhile
    status: str
    error: str = ""

    def line(self) -> str:
        head = f"  round {self.round + 1}, seed {self.seed}, {MODE[self.saving]}:"
        if self.wall_s is None:
            return f"{head} {self.status}: {self.error}"
        return (
            f"{head} {self.wall_s:.3f} s (CPU {_seconds(self.cpu_s)}, "
            f"steal {_seconds(self.steal_s)})"
        )


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f} s"


def _relative_range(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


@dataclass(frozen=True)
class Spread:
    """One saving mode: each seed's time (the median of its rounds), their spread, and the
    run-to-run noise (the median over seeds of the (max-min)/median of a seed's rounds)."""

    saving: bool
    times: dict[int, float]  # seed -> median of its ok rounds
    noise: float | None  # None with one round: not measured

    @property
    def low(self) -> float:
        return min(self.times.values())

    @property
    def high(self) -> float:
        return max(self.times.values())

    @property
    def median(self) -> float:
        return statistics.median(self.times.values())

    @property
    def relative(self) -> float:
        return _relative_range(list(self.times.values()))

    def line(self) -> str:
        noise = "not measured (one round)" if self.noise is None else f"{self.noise:.1%}"
        return (
            f"{MODE[self.saving]}: {len(self.times)} seeds, min {self.low:.3f} s, max "
            f"{self.high:.3f} s, median {self.median:.3f} s, (max-min)/median "
            f"{self.relative:.1%}; run-to-run noise {noise}"
        )

    def verdict(self) -> str:
        """Whether the seeds' spread stands out of the noise (at least NOISE_FACTOR times it)."""
        if self.noise is None:
            return "give --rounds 2 or more to see whether the spread is the seeds' or noise"
        if self.relative >= NOISE_FACTOR * self.noise:
            return "the spread is the seeds': well above the run-to-run noise"
        return (
            "the run-to-run noise is as large as the spread, so this machine could not tell "
            "the seeds apart: measure again when it is quiet, or with more --rounds"
        )


class Seeds(_Strict):
    """What seeds.json holds: the recorded runs per (round, seed, saving mode), where they ran."""

    format_version: int
    config_name: str
    config_file: str
    n_images: int
    size: list[int]
    format: str
    augmentations: int
    warmup_runs: int
    warmup_tasks: float  # the share of the tasks a warm-up run does
    seeds: list[int]  # planned; an interrupted measurement holds fewer runs
    rounds: int
    saving: list[bool]
    runs: list[SeedRun]
    host: dict
    git_commit: str | None
    started_at: str
    ended_at: str
    interrupted: str | None = None  # the signal that stopped it

    def spread(self, saving: bool) -> Spread | None:
        walls: dict[int, list[float]] = {}
        for r in self.runs:
            if r.saving == saving and r.wall_s is not None:
                walls.setdefault(r.seed, []).append(r.wall_s)
        if not walls:
            return None
        times = {seed: statistics.median(w) for seed, w in walls.items()}
        repeated = [_relative_range(w) for w in walls.values() if len(w) > 1]
        return Spread(saving, times, statistics.median(repeated) if repeated else None)

    @property
    def spreads(self) -> list[Spread]:
        return [s for m in self.saving if (s := self.spread(m)) is not None]

    @property
    def planned(self) -> int:
        return len(self.seeds) * self.rounds * len(self.saving)

    @property
    def failed(self) -> list[SeedRun]:
        return [r for r in self.runs if r.wall_s is None]

    def workload(self) -> str:
        rounds = "one round" if self.rounds == 1 else f"{self.rounds} rounds"
        return (
            f"{BASELINE} baseline of {self.config_name} ({self.n_images} images x "
            f"{self.augmentations} augmentations, {self.size[0]}x{self.size[1]} {self.format}), "
            f"{rounds} over the seeds, each run in a fresh process after {self.warmup()}"
        )

    def warmup(self) -> str:
        part = f" of {self.warmup_tasks:.0%} of the tasks" if self.warmup_tasks < 1 else ""
        return f"{self.warmup_runs} warm-up run(s){part}"


def measure(
    config: Config,
    config_path: str,
    n: int,
    rounds: int = 2,
    run_dir: Path | None = None,
    on_run: Callable[[SeedRun], None] = lambda run: None,
) -> Seeds:
    """Time the baseline at seeds config.seed ... config.seed + n - 1, every saving mode, in
    rounds over the seeds (so drift on a shared machine spreads over them). On SIGINT/SIGTERM
    the child is killed and the runs that finished are returned, marked."""
    init_process(config.cv2_threads)  # as `run` does: no OpenCV thread pool before a fork
    found = inputs.inspect(config, config_path)
    config = inputs.with_folder_size(config, found)
    if run_dir is not None:
        check_run(run_dir, config)
    seeds = list(range(config.seed, config.seed + n))
    started, runs, stopped = utc_now(), [], None
    with tempfile.TemporaryDirectory(prefix="augscale-seeds-") as tmp:
        # Only the base size: a weak sweep's larger images are not needed here.
        base_only = config.model_copy(update={"kind": "strong", "workers": [1], "points": None})
        found = inputs.prepare(base_only, found, Path(tmp))
        costs = calibrate(base_only, found.n_images)  # for the runner's timeout
        cores = machine.usable_cores()
        try:
            with interruptible():
                for round_ in range(rounds):
                    for seed in seeds:
                        seeded = config.model_copy(update={"seed": seed})
                        sweep = Sweep(
                            seeded, Path(tmp), found.dirs, found.n_images, costs, cores, ONE
                        )
                        for saving in config.saving:
                            runs.append(_one(sweep, seed, saving, round_))
                            on_run(runs[-1])
        except Interrupted as err:
            stopped = err.args[0]
    return Seeds(
        format_version=FORMAT,
        config_name=config.name,
        config_file=str(config_path),
        n_images=found.n_images,
        size=list(config.base_size),
        format=config.images.format,
        augmentations=config.augmentations_per_image,
        warmup_runs=config.warmup_runs,
        warmup_tasks=config.warmup_tasks,
        seeds=seeds,
        rounds=rounds,
        saving=list(config.saving),
        runs=runs,
        host=machine.host_info(),
        git_commit=machine.git_commit(),
        started_at=started,
        ended_at=utc_now(),
        interrupted=stopped,
    )


def _one(sweep: Sweep, seed: int, saving: bool, round_: int) -> SeedRun:
    cell = Cell(BASELINE, 1, saving, *sweep.config.base_size)
    row = run_unit(sweep, Unit(cell, (0,)), lambda line: None)[0]
    ok = row["status"] == "ok"
    columns = {"wall_s": "wall_s", "cpu_s": "t_cpu_s", "steal_s": "steal_s"}
    found = {k: _number(row.get(c)) if ok else None for k, c in columns.items()}
    return SeedRun(
        seed=seed, saving=saving, round=round_, status=row["status"], error=row["error"], **found
    )


def _number(value: object) -> float | None:
    return None if value is None or math.isnan(value) else float(value)  # type: ignore[arg-type]


def check_run(run_dir: Path, config: Config) -> None:
    """A run folder whose workload is the config's, so the seeds' times stand beside its own."""
    store.require_run_dir(run_dir)
    ran = read_run_meta(run_dir).config.model_dump(mode="json", exclude_unset=True)
    given = config.model_dump(mode="json")
    for key in WORKLOAD_KEYS:
        if ran.get(key) != given.get(key):
            raise HarnessError(
                str(run_dir),
                key,
                f"the run's workload differs from the config's ({ran.get(key)!r} there, "
                f"{given.get(key)!r} in the config)",
                "give the run's own config (its meta.json holds it as config_text), or leave "
                "out --run",
            )


def write(run_dir: Path, seeds: Seeds) -> Path:
    path = Path(run_dir) / FILE
    store.replace_text(path, seeds.model_dump_json(indent=1) + "\n")
    return path


def read(run_dir: Path) -> Seeds | None:
    """The run folder's seeds.json, None when it has none; a damaged, foreign or newer file is
    one line (HarnessError)."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return None
    fix = f"measure it again (python -m harness seeds CONFIG --run {run_dir}), or delete {path}"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise HarnessError(
            str(path), None, f"cannot be read, it is damaged or truncated ({err})", fix
        ) from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > FORMAT:
        raise HarnessError(
            str(path),
            "format_version",
            f"written by a newer augscale (version {version}; this one reads up to {FORMAT})",
            "read it with the newer augscale, or " + fix,
        )
    try:
        return Seeds.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(map(str, e["loc"])) or None
        raise HarnessError(str(path), where, f"not a seeds file ({e['msg']})", fix) from None
