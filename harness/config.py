"""The YAML config a user edits, validated with pydantic. Unknown keys are errors.

Strategies' own options are validated by the strategy's options model (experiments.contract),
so this module names no strategy; the one exception is the deprecated `dask:` spelling, which
is moved to `options: {P_DASK: ...}` (LEGACY_OPTION_KEYS).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
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
from harness.errors import HarnessError
from harness.schema import BASELINE
from harness.stats.precision import Target
from harness.variants import Variant, variants

PositiveInt = Annotated[StrictInt, Field(gt=0)]
Size = Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]
# Old top-level keys that now live under `options:` -> the strategy they belong to.
LEGACY_OPTION_KEYS = {"dask": "P_DASK"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Images(_Strict):
    count: PositiveInt = 10
    size: Size = [2000, 1000]
    format: Literal["jpg", "png"] = "jpg"
    input_dir: Path | None = None
    skip_unreadable: StrictBool = False


class Point(_Strict):
    workers: PositiveInt
    size: Size


class Repeats(_Strict):
    """A precision target: record runs until the median's 95% interval is within +-ci."""

    min: PositiveInt = 3
    max: PositiveInt = 9  # 6 to 8 runs give the range as interval; 9 drops the extremes
    ci: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.03
    # Machine time for the whole sweep, in run-equivalents per cell (each cell weighted by its
    # run time): runs beyond min stop once it would be passed. None: no cap.
    spend: Annotated[StrictFloat | StrictInt, Field(gt=0)] | None = None
    # Paired ratios (order: rounds or race): the rounds before one may stop as futile. Six
    # judged four quick_strong cells futile at +-7.5-9.7% (docs/STATISTICS.md).
    futile_after: Annotated[StrictInt, Field(ge=3)] = 8

    @model_validator(mode="after")
    def _min_below_max(self) -> Repeats:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be at least min ({self.min})")
        return self


class Race(_Strict):
    """`order: race` (harness/stats/racing.py): when the first test comes, at what level, the margin
    within which survivors tie, and from which round of a stage the answer may settle without a
    tie among equal W. `repeats: {max}` caps the rounds."""

    first_test: Annotated[StrictInt, Field(ge=2)] = 5
    alpha: Annotated[StrictFloat, Field(gt=0, lt=0.5)] = 0.05
    margin: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.02
    stage: Literal["cores", "all"] = "cores"  # strategies at W = cores first, or every W at once
    settle_after: Annotated[StrictInt, Field(ge=2)] | None = 10  # None: only a tie settles
    retie: StrictBool = False  # stage 2 asks stage 1's tied or settled strategies to tie again
    carry: Literal["answer", "tied"] = "answer"  # into stage 2 after a tie: its answer, or all


class Warmup(_Strict):
    """Warm-up runs per child process, each over a fraction of the tasks (every image)."""

    runs: Annotated[StrictInt, Field(ge=0)] = 1
    tasks: Annotated[StrictFloat | StrictInt, Field(gt=0, le=1)] = 1.0


class Config(_Strict):
    """A sweep as configured. Validation is pure: it loads no plugin and asks no registry, so a
    stored config re-validates anywhere; make_runnable() adds those checks before a run."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]
    kind: Literal["strong", "weak"]
    images: Images = Images()
    augmentations_per_image: PositiveInt = 100
    plugins: list[str] = []  # strategy modules outside the repo: module names or .py paths
    # Each entry a strategy name, or a variant {NAME: {option: value, ...}} (harness/variants.py).
    strategies: Annotated[list[Any], Field(min_length=1)] = ["P_1", "P_2", "P_Q"]
    options: dict[str, dict[str, Any]] = {}  # per strategy: its own options
    saving: Annotated[list[StrictBool], Field(min_length=1, max_length=2)] = [True, False]
    workers: list[PositiveInt] | None = None
    points: list[Point] | None = None
    repeats: PositiveInt | Repeats = 3
    # A tenth of the tasks: run 0 after it is no slower than the later runs (docs/RESULTS.md,
    # "The partial warm-up"; tests/test_real_runs.py).
    warmup: Annotated[StrictInt, Field(ge=0)] | Warmup = Field(
        default_factory=lambda: Warmup(runs=1, tasks=0.1)
    )
    seed: StrictInt = 0
    cv2_threads: Annotated[StrictInt, Field(ge=0)] = 1
    start_method: Literal["fork", "forkserver", "spawn"] = "fork"
    placement: Literal["none", "close", "spread"] = "none"
    order: Literal["sequential", "interleaved", "rounds", "race"] = "sequential"
    baseline_every: PositiveInt | None = None  # rounds: visit the baseline after every N cells
    # rounds: the time-slicing cells after the others, past a visit of their own (plan/rounds.py)
    slicing_last: StrictBool = False
    race: Race | None = None  # order: race; None: the defaults (and older run folders resume)
    cell_timeout_s: Annotated[StrictFloat | StrictInt, Field(gt=0)] | None = None
    scratch_dir: Path | None = None
    _entries: list[Variant] = PrivateAttr(default_factory=list)

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
        r = self.repeats
        if isinstance(r, int):
            return Target(r, r)
        spend = None if r.spend is None else float(r.spend)
        return Target(r.min, r.max, r.ci, spend=spend, futile_after=r.futile_after)

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
        children = r.min if self.child_per_run else 1
        need = r.min + self.warmup_runs * self.warmup_tasks * children
        if r.spend < need:
            raise ValueError(
                f"repeats.spend: {r.spend:g} run-equivalents per cell do not pay for min "
                f"({r.min}) runs and their warm-ups ({need:g}); give {need:g} or more, or drop "
                "spend"
            )
        return self

    @property
    def child_per_run(self) -> bool:
        """Whether every recorded run has a child (and a warm-up) of its own."""
        return self.order in ("interleaved", "rounds", "race")

    @property
    def race_rules(self) -> Race:
        return self.race or Race()

    @property
    def paired(self) -> bool:
        """Whether it runs in paired rounds (harness/plan/rounds.py): `rounds` or a `race`."""
        return self.order in ("rounds", "race")

    @model_validator(mode="after")
    def _visits_need_rounds(self) -> Config:
        if self.baseline_every is not None and not self.paired:
            raise ValueError("baseline_every: is for order: rounds or race")
        if self.slicing_last and not self.paired:
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


_FIXES = {
    "extra_forbidden": "remove it, or check its spelling against the README's list of keys",
    "missing": "add it",
    "int_type": "give a whole number",
    "bool_type": "write true or false",
    "literal_error": "use one of the values the message lists",
    "greater_than": "give a number above the limit",
    "greater_than_equal": "give a number at or above the limit",
    "too_short": "list at least the minimum number of entries",
    "too_long": "list fewer entries",
    "list_type": "write a YAML list, e.g. [2, 4]",
    "string_pattern_mismatch": "use letters, digits, '_', '-' or '.' only (no '/')",
    "value_error": "correct the value as the message says (see README, 'Config keys')",
}


def _first_error(path: Path, err: ValidationError) -> HarnessError:
    e = err.errors()[0]
    msg = e["msg"].removeprefix("Value error, ")
    key = ".".join(str(p) for p in e["loc"]) or _key_named_in(msg)
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    fix = _FIXES.get(e["type"], _FIXES["value_error"])
    return HarnessError(str(path), key, msg, fix)


def _key_named_in(msg: str) -> str:
    """A whole-config check names its key first ("workers: must list ..."); use it as the key."""
    head = msg.split(":", 1)[0].split()[0] if msg else ""
    return head if head and head.replace(".", "").replace("_", "").isalpha() else "(top level)"


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice is an error instead of silently last-wins."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


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
    data = _resolve_plugins(_move_legacy_keys(data, path), path)
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise _first_error(path, err) from None


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
    raise _value_error(path, _key_named_in(msg), msg)


def _value_error(path: Path, key: str, msg: str) -> HarnessError:
    """The error a failed check gives, as pydantic's value errors are reported."""
    return HarnessError(str(path), key, msg, _FIXES["value_error"])


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


def _move_legacy_keys(data: dict, path: Path) -> dict:
    data = dict(data)
    for key, strategy in LEGACY_OPTION_KEYS.items():
        if key not in data:
            continue
        options = dict(data.get("options") or {})
        if strategy in options:
            raise HarnessError(
                str(path),
                key,
                f"given twice, as `{key}:` and as `options: {{{strategy}: …}}`",
                f"keep only `options: {{{strategy}: …}}`",
            )
        print(
            f"note: {path}: key '{key}:' is deprecated; write it as `options: {{{strategy}: …}}`",
            file=sys.stderr,
        )
        value = data.pop(key)
        entries = data.get("strategies") or []
        runs = [next(iter(e), None) if isinstance(e, dict) else e for e in entries]
        if strategy in runs:  # elsewhere it never had an effect
            data["options"] = {**options, strategy: value}
    return data


def _resolve_plugins(data: dict, path: Path) -> dict:
    """A plugin given as a .py path is relative to the config file's folder."""
    plugins = data.get("plugins")
    if not isinstance(plugins, list):
        return data
    resolved = [
        str((path.parent / p).resolve()) if isinstance(p, str) and p.endswith(".py") else p
        for p in plugins
    ]
    return {**data, "plugins": resolved}


def load_config(path: str | Path) -> Config:
    """Read and validate a config, raising HarnessError with file, key and fix."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(
            str(path),
            None,
            "no such config file",
            "give the path of a YAML file, e.g. configs/quick_strong.yaml",
        )
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise HarnessError(
            where,
            None,
            f"malformed YAML ({getattr(err, 'problem', err)})",
            "fix the YAML syntax at that line",
        ) from None
    config = parse_config(data, path)
    _check_input_dir(config, path)
    return config


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
