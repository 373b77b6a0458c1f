"""How a sweep measures, the parts of the config that say it: the order (and what each order
implies), the stop rule (`repeats:`), the race's rules and the warm-up. Each default is built
here, once: a config without `order:` or `repeats:` runs in paired rounds to the shipped quick
configs' precision target, and a race without `repeats:` to configs/race.yaml's."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

from harness.stats import racing
from harness.stats.precision import Target

PositiveInt = Annotated[StrictInt, Field(gt=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Repeats(Strict):
    """A precision target: record runs until the median's 95% interval is within +-ci."""

    min: PositiveInt = 3
    max: PositiveInt = 9  # 6 to 8 runs give the range as interval; 9 drops the extremes
    ci: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.03
    # Machine time for the whole sweep, in run-equivalents per cell (each cell weighted by its
    # run time): runs beyond min stop once it would be passed. None: no cap.
    spend: Annotated[StrictFloat | StrictInt, Field(gt=0)] | None = None
    # Paired ratios (order: rounds or race): the rounds before one may stop as futile; at 6 the
    # Wilcoxon interval is still the range of the Walsh averages (docs/STATISTICS.md).
    futile_after: Annotated[StrictInt, Field(ge=3)] = 8
    # futile when the projections from the interval and from the MAD both say so (robust), or
    # from the interval alone (interval: run folders of format 6 and before)
    futility: Literal["robust", "interval"] = "robust"

    @model_validator(mode="after")
    def _min_below_max(self) -> Repeats:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be at least min ({self.min})")
        return self


class Race(Strict):
    """`order: race` (harness/stats/racing.py): when the first test comes, at what level, the margin
    within which survivors tie, and from which round of a stage the answer may settle without a
    tie among equal W. `repeats: {max}` caps the rounds."""

    first_test: Annotated[StrictInt, Field(ge=2)] = racing.FIRST_TEST
    alpha: Annotated[StrictFloat, Field(gt=0, lt=0.5)] = racing.ALPHA
    margin: Annotated[StrictFloat, Field(gt=0, lt=1)] = racing.MARGIN
    stage: Literal["cores", "all"] = "cores"  # strategies at W = cores first, or every W at once
    # None: only a tie settles
    settle_after: Annotated[StrictInt, Field(ge=2)] | None = racing.SETTLE_AFTER
    retie: StrictBool = False  # stage 2 asks stage 1's tied or settled strategies to tie again
    carry: Literal["answer", "tied"] = "answer"  # into stage 2 after a tie: its answer, or all
    # Once answered, the answer (and the baseline) run on until its images/s interval is within
    # +-rate_ci or `repeats.max` rounds; None: the race ends with its answer.
    rate_ci: Annotated[StrictFloat, Field(gt=0, lt=1)] | None = 0.03


class Warmup(Strict):
    """Warm-up runs per child process, each over a fraction of the tasks (every image)."""

    runs: Annotated[StrictInt, Field(ge=0)] = 1
    tasks: Annotated[StrictFloat | StrictInt, Field(gt=0, le=1)] = 1.0


# The shipped quick configs' target, the one the A/A test validated: a sweep's default.
SWEEP_REPEATS = Repeats(min=3, max=20, ci=0.03)
# configs/race.yaml's: a race runs rounds until it decides, at most `max` of them.
RACE_REPEATS = Repeats(min=5, max=40, ci=0.02)
RACE_RULES = Race()
# A tenth of the tasks: run 0 after it is no slower than the later runs (docs/RESULTS.md,
# "The partial warm-up"; tests/test_real_runs.py).
WARMUP = Warmup(runs=1, tasks=0.1)


class Order(StrEnum):
    """`order:`, and what each order implies for planning, measuring and the stop rule."""

    SEQUENTIAL = "sequential"  # one child per cell records its runs one after another
    INTERLEAVED = "interleaved"  # one child per (cell, repeat), round-robin over the cells
    ROUNDS = "rounds"  # paired rounds: each run's speedup from the baseline visits around it
    RACE = "race"  # paired rounds whose contenders are dropped by the race's tests

    @property
    def paired(self) -> bool:
        """Runs in paired rounds (harness/plan/rounds.py): baseline visits each round, and the
        stop rule judges each cell's per-round ratio."""
        return self in (Order.ROUNDS, Order.RACE)

    @property
    def child_per_run(self) -> bool:
        """Every recorded run has a child process (and a warm-up) of its own."""
        return self is not Order.SEQUENTIAL

    @property
    def raced(self) -> bool:
        """Who takes part is the race's call: --budget ends its rounds in time instead of
        lowering `max`, and the estimate is only the sweep's, for comparison."""
        return self is Order.RACE

    @property
    def words(self) -> str:
        """How the plan names it."""
        return {
            Order.SEQUENTIAL: "in sequential order",
            Order.INTERLEAVED: "interleaved",
            Order.ROUNDS: "in paired rounds",
            Order.RACE: "a race in paired rounds",
        }[self]

    @property
    def default_repeats(self) -> Repeats:
        """`repeats:` when the config gives none."""
        return RACE_REPEATS if self.raced else SWEEP_REPEATS


DEFAULT_ORDER = Order.ROUNDS


def stop_rule(repeats: int | Repeats, max_runs: int | None = None) -> Target:
    """The stop rule of `repeats:`: a fixed count (`repeats: 3`), or a precision target whose
    `max` a budget may have lowered to `max_runs`."""
    if isinstance(repeats, int):
        return Target(repeats, repeats)
    most = min(repeats.max, max_runs or repeats.max)
    spend = None if repeats.spend is None else float(repeats.spend)
    return Target(
        repeats.min,
        most,
        repeats.ci,
        spend=spend,
        futile_after=repeats.futile_after,
        futility=repeats.futility,
    )
