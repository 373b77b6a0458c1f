"""The YAML config a user edits, validated with pydantic. Unknown keys are errors.

Strategies' own options are validated by the strategy's options model (experiments.contract),
so this module names no strategy; the one exception is the deprecated `dask:` spelling, which
is moved to `options: {P_DASK: ...}` (harness/config_yaml.py). The parts that say how the sweep
measures (order, repeats, race, warm-up) and their defaults are harness/sweep_rules.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from experiments import strategies
from experiments.contract import ContractError
from experiments.workload import IMAGE_SUFFIXES
from harness import pipelines
from harness.config_yaml import (
    FIXES,
    first_error,
    key_named_in,
    move_legacy_keys,
    read_yaml,
    resolve_plugins,
)
from harness.errors import HarnessError
from harness.schema import BASELINE
from harness.stats.precision import Target
from harness.sweep_rules import (
    DEFAULT_ORDER,
    RACE_RULES,
    SWEEP_REPEATS,
    WARMUP,
    Order,
    PositiveInt,
    Race,
    Repeats,
    Strict,
    Warmup,
    stop_rule,
)
from harness.variants import Variant, variants

Size = Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]


class Images(Strict):
    count: PositiveInt = 10
    size: Size = [2000, 1000]
    format: Literal["jpg", "png"] = "jpg"
    save_as: Literal["jpg", "png", "npy"] | None = None  # saved outputs; None: as `format`
    input_dir: Path | None = None
    skip_unreadable: StrictBool = False


class Point(Strict):
    workers: PositiveInt
    size: Size


class Config(Strict):
    """A sweep as configured. Validation is pure: it loads no plugin and asks no registry, so a
    stored config re-validates anywhere; make_runnable() adds those checks before a run."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]
    kind: Literal["strong", "weak"]
    images: Images = Images()
    augmentations_per_image: PositiveInt = 100
    plugins: list[str] = []  # strategy modules outside the repo: module names or .py paths
    # Each entry a strategy name, or a variant {NAME: {option: value, ...}} (harness/variants.py).
    strategies: Annotated[list[Any], Field(min_length=1)] = ["P_1", "P_2", "P_Q"]
    # An albumentations pipeline: a file written by A.save, the dict inline, or module:function;
    # None: the study's Compose. Stored in its checked form (harness/pipelines.py).
    pipeline: str | dict[str, Any] | None = None
    # images/s the training step consumes: the race names the fewest workers that feed it
    target_rate: Annotated[float, Field(gt=0)] | None = None
    options: dict[str, dict[str, Any]] = {}  # per strategy: its own options
    saving: Annotated[list[StrictBool], Field(min_length=1, max_length=2)] = [True, False]
    workers: list[PositiveInt] | None = None
    points: list[Point] | None = None
    repeats: PositiveInt | Repeats = SWEEP_REPEATS  # a race's default: Order.default_repeats
    warmup: Annotated[StrictInt, Field(ge=0)] | Warmup = WARMUP
    seed: StrictInt = 0
    cv2_threads: Annotated[StrictInt, Field(ge=0)] = 1
    # Environment variables of every measuring process (each unit's child and what it starts),
    # e.g. the allocator's: docs/MEMORY.md. Sequential and parallel cells run with the same.
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = {}
    start_method: Literal["fork", "forkserver", "spawn"] = "fork"
    placement: Literal["none", "close", "spread"] = "none"
    order: Order = DEFAULT_ORDER
    baseline_every: PositiveInt | None = None  # rounds: visit the baseline after every N cells
    # rounds: the time-slicing cells after the others, past a visit of their own (plan/rounds.py)
    slicing_last: StrictBool = False
    race: Race | None = None  # order: race; None: the defaults (and older run folders resume)
    cell_timeout_s: Annotated[StrictFloat | StrictInt, Field(gt=0)] | None = None
    # run: profile the pipeline transform by transform before the sweep (docs/PROFILE.md)
    profile: StrictBool = True
    scratch_dir: Path | None = None
    _entries: list[Variant] = PrivateAttr(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _repeats_of_the_order(cls, data: object) -> object:
        """Without `repeats:`, the order's own (a race's differ from a sweep's)."""
        if not isinstance(data, dict) or "repeats" in data:
            return data
        try:
            order = Order(data.get("order", DEFAULT_ORDER))
        except ValueError:
            return data  # the field's validation names the key
        return {**data, "repeats": order.default_repeats}

    @field_validator("name")
    @classmethod
    def _no_dots(cls, v: str) -> str:
        if ".." in v:
            raise ValueError("must not contain '..'")
        return v

    @field_validator("strategies")
    @classmethod
    def _distinct_entries(cls, v: list[Any]) -> list[Any]:
        labels = [e.label for e in variants(v)]  # ValueError naming a malformed entry
        twice = [s for s in labels if labels.count(s) > 1]
        if twice:
            raise ValueError(f"lists {twice[0]} twice")
        return v

    @model_validator(mode="after")
    def _parse_entries(self) -> Config:
        self._entries = variants(self.strategies)
        return self

    @property
    def entries(self) -> list[Variant]:
        """The `strategies:` entries parsed, in the config's order (see harness/variants.py)."""
        return self._entries

    @property
    def target(self) -> Target:
        """The stop rule: a fixed count (`repeats: 3`) or a precision target."""
        return stop_rule(self.repeats)

    @property
    def warmup_runs(self) -> int:
        return self.warmup if isinstance(self.warmup, int) else self.warmup.runs

    @property
    def warmup_tasks(self) -> float:
        """The fraction of the tasks a warm-up run does (1.0: the whole measurement)."""
        return 1.0 if isinstance(self.warmup, int) else float(self.warmup.tasks)

    @property
    def labels(self) -> list[str]:
        """The strategies to run, a variant by its label (P_TORCH[in_order=false])."""
        return [e.label for e in self.entries]

    @model_validator(mode="after")
    def _options_and_workers_fit(self) -> Config:
        names = {e.name for e in self.entries}
        for name in self.options:
            if name not in names:
                raise ValueError(f"options.{name}: options for a strategy this config does not run")
        for e in self.entries:
            if e.workers is not None and self.kind != "strong":
                raise ValueError(f"strategies: {e.label}: workers: is for kind: strong")
            if e.workers is not None and not set(e.workers) <= set(self.workers or []):
                raise ValueError(
                    f"strategies: {e.label}: workers: must be some of the sweep's workers "
                    f"{self.workers}"
                )
        return self

    def options_for(self, label: str) -> dict[str, Any]:
        """The strategy's validated options, defaults filled in: `options: {NAME: ...}`, then a
        variant's own; the top-level `placement` applies to every strategy whose options have a
        placement."""
        name = strategies.base_name(label)
        strategy = strategies.get(name)
        own = {e.label: e.options for e in self.entries}.get(label, {})
        given = {**(self.options.get(name) or {}), **own}
        if strategy.options is not None and "placement" in strategy.options.model_fields:
            given.setdefault("placement", self.placement)
        return strategy.validate_options(given)

    @model_validator(mode="after")
    def _kind_matches_sweep(self) -> Config:
        if self.kind == "strong":
            if self.points is not None:
                raise ValueError("points: is for kind: weak; a strong sweep uses workers:")
            if not self.workers:
                raise ValueError("workers: must list at least one worker count")
        else:
            if self.workers is not None:
                raise ValueError("workers: is for kind: strong; a weak sweep uses points:")
            if not self.points:
                raise ValueError("points: must list at least one {workers, size} pair")
            if self.images.input_dir is not None:
                raise ValueError(
                    "images.input_dir needs kind: strong (a weak sweep generates its sizes)"
                )
        return self

    @model_validator(mode="after")
    def _spend_pays_for_min(self) -> Config:
        if isinstance(self.repeats, int) or self.repeats.spend is None:
            return self
        r = self.repeats
        children = r.min if self.order.child_per_run else 1
        need = r.min + self.warmup_runs * self.warmup_tasks * children
        if r.spend < need:
            raise ValueError(
                f"repeats.spend: {r.spend:g} run-equivalents per cell do not pay for min "
                f"({r.min}) runs and their warm-ups ({need:g}); give {need:g} or more, or drop "
                "spend"
            )
        return self

    @property
    def race_rules(self) -> Race:
        return self.race or RACE_RULES

    @model_validator(mode="after")
    def _visits_need_rounds(self) -> Config:
        if self.baseline_every is not None and not self.order.paired:
            raise ValueError("baseline_every: is for order: rounds or race")
        if self.slicing_last and not self.order.paired:
            raise ValueError("slicing_last: is for order: rounds or race")
        return self

    def runs_at(self, label: str, workers: int) -> bool:
        """Whether the entry `label` runs at this worker count (a variant may list its own)."""
        own = {e.label: e.workers for e in self.entries}.get(label)
        return own is None or workers in own

    @property
    def sweep(self) -> list[tuple[int, tuple[int, int]]]:
        """(workers, (width, height)) for every point of the sweep."""
        if self.kind == "strong":
            size = tuple(self.images.size)
            return [(w, size) for w in self.workers or []]
        return [(p.workers, tuple(p.size)) for p in self.points or []]

    @property
    def base_size(self) -> tuple[int, int]:
        return tuple(self.images.size)  # type: ignore[return-value]


def parse_config(data: object, path: Path) -> Config:
    """A config file's data validated and made runnable; HarnessError with file, key and fix."""
    return make_runnable(validate_config(data, path), path)


def validate_config(data: object, path: Path) -> Config:
    """A config file's data validated as a Config, without loading plugins or the registry."""
    if not isinstance(data, dict):
        raise HarnessError(
            str(path),
            None,
            "the file is not a YAML mapping of keys",
            "see configs/quick_strong.yaml for the shape",
        )
    data = resolve_plugins(move_legacy_keys(data, path), path)
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise first_error(path, err) from None


def make_runnable(config: Config, path: Path) -> Config:
    """The checks a run needs beyond validation: its plugins load, its strategies are known,
    their options fit their contracts and their optional extras are installed."""
    try:
        strategies.load_plugins(config.plugins)
    except ContractError as err:
        raise _value_error(path, "plugins", str(err)) from None
    known = [s for s in strategies.names() if s != BASELINE]
    unknown = [e.name for e in config.entries if e.name not in known]
    if unknown:
        msg = f"unknown strategy {unknown[0]!r}; known: {', '.join(known)}"
        raise _value_error(path, "strategies", msg)
    for name in config.options:
        _check_options(config, path, name, f"options.{name}")
    for e in config.entries:
        if e.options:
            _check_options(config, path, e.label, f"strategies: {e.label}", ": ")
    _check_extras(config, path)
    return config


def _check_options(config: Config, path: Path, label: str, where: str, sep: str = ".") -> None:
    try:
        config.options_for(label)
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(map(str, e["loc"]))
        msg = f"{where}{sep + loc if loc else ''}: {e['msg']}"
    except ValueError as err:
        msg = f"{where}: {err}"
    else:
        return
    raise _value_error(path, key_named_in(msg), msg)


def _value_error(path: Path, key: str, msg: str) -> HarnessError:
    """The error a failed check gives, as pydantic's value errors are reported."""
    return HarnessError(str(path), key, msg, FIXES["value_error"])


def _check_extras(config: Config, path: Path) -> None:
    """A strategy whose optional extra is not installed: refused now, naming the extra."""
    for label in config.labels:
        strategy = strategies.get(label)
        missing = strategy.missing()
        if missing:
            raise HarnessError(
                str(path),
                "strategies",
                f"{strategy.name} needs {', '.join(missing)}, which is not installed here",
                f"install the optional extra: make install EXTRAS={strategy.extra} "
                f"(or pip install -e '.[{strategy.extra}]'), or remove {strategy.name}",
            )


def load_config(path: str | Path) -> Config:
    """Read and validate a config, raising HarnessError with file, key and fix."""
    path = Path(path)
    config = parse_config(read_yaml(path), path)
    _check_input_dir(config, path)
    return config.model_copy(update={"pipeline": pipelines.stored_form(config.pipeline, path)})


def _check_input_dir(config: Config, path: Path) -> None:
    d = config.images.input_dir
    if d is None:
        return
    if not d.is_dir():
        raise HarnessError(
            str(path),
            "images.input_dir",
            f"folder {d} does not exist",
            "give an existing folder of images, or null to generate test images",
        )
    if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir() if f.is_file()):
        raise HarnessError(
            str(path),
            "images.input_dir",
            f"folder {d} holds no images ({', '.join(IMAGE_SUFFIXES)})",
            "put images in it, or set input_dir: null",
        )
