"""`seeds.json` in a run folder: the baseline timed at several seeds (`python -m harness seeds`),
its model and its spread per saving mode. Written atomically; a damaged, foreign or newer file is
refused in one line."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.rundir import store
from harness.schema import BASELINE

FILE = "seeds.json"
FORMAT = 1
COMPARE = (
    "Absolute times compare only at the same seed on the same machine; speedups are unaffected "
    "because every strategy does the same seeded work."
)
MODE = {True: "saving", False: "no saving"}
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


def write(run_dir: Path, seeds: Seeds) -> Path:
    return store.write_model(Path(run_dir) / FILE, seeds)


def read(run_dir: Path) -> Seeds | None:
    """The run folder's seeds.json, None when it has none; a damaged, foreign or newer file is
    one line (HarnessError)."""
    fix = f"measure it again (python -m harness seeds CONFIG --run {run_dir}), or delete it"
    return store.read_model(Path(run_dir) / FILE, Seeds, FORMAT, "a seeds file", fix)
