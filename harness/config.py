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


class Config(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]
    kind: Literal["strong", "weak"]
    images: Images = Images()
    augmentations_per_image: PositiveInt = 100
    plugins: list[str] = []  # strategy modules outside the repo: module names or .py paths
    strategies: Annotated[list[str], Field(min_length=1)] = ["P_1", "P_2", "P_Q"]
    options: dict[str, dict[str, Any]] = {}  # per strategy: its own options
    saving: Annotated[list[StrictBool], Field(min_length=1, max_length=2)] = [True, False]
    workers: list[PositiveInt] | None = None
    points: list[Point] | None = None
    repeats: PositiveInt = 3
    warmup: Annotated[StrictInt, Field(ge=0)] = 1
    seed: StrictInt = 0
    cv2_threads: Annotated[StrictInt, Field(ge=0)] = 1
    start_method: Literal["fork", "forkserver", "spawn"] = "fork"
    placement: Literal["none", "close", "spread"] = "none"
    order: Literal["sequential", "interleaved"] = "sequential"
    cell_timeout_s: Annotated[StrictFloat | StrictInt, Field(gt=0)] | None = None
    scratch_dir: Path | None = None

    @field_validator("name")
    @classmethod
    def _no_dots(cls, v: str) -> str:
        if ".." in v:
            raise ValueError("must not contain '..'")
        return v

    @field_validator("plugins")
    @classmethod
    def _load_plugins(cls, v: list[str]) -> list[str]:
        try:
            strategies.load_plugins(v)
        except ContractError as err:
            raise ValueError(str(err)) from None
        return v

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, v: list[str]) -> list[str]:
        known = [s for s in strategies.names() if s != BASELINE]
        unknown = [s for s in v if s not in known]
        if unknown:
            raise ValueError(f"unknown strategy {unknown[0]!r}; known: {', '.join(known)}")
        if len(set(v)) != len(v):
            raise ValueError("lists a strategy twice")
        return v

    @model_validator(mode="after")
    def _valid_options(self) -> Config:
        for name in self.options:
            if name not in self.strategies:
                raise ValueError(f"options.{name}: options for a strategy this config does not run")
            try:
                self.options_for(name)
            except ValidationError as err:
                e = err.errors()[0]
                where = ".".join(["options", name, *map(str, e["loc"])])
                raise ValueError(f"{where}: {e['msg']}") from None
            except ValueError as err:
                raise ValueError(f"options.{name}: {err}") from None
        return self

    def options_for(self, name: str) -> dict[str, Any]:
        """The strategy's validated options, defaults filled in; the top-level `placement`
        applies to every strategy whose options have a placement."""
        strategy = strategies.get(name)
        given = dict(self.options.get(name) or {})
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
}


def _first_error(path: Path, err: ValidationError) -> HarnessError:
    e = err.errors()[0]
    msg = e["msg"].removeprefix("Value error, ")
    key = ".".join(str(p) for p in e["loc"]) or _key_named_in(msg)
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    fix = _FIXES.get(e["type"], "correct the value as the message says (see README, 'Config keys')")
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
        if strategy in (data.get("strategies") or []):  # elsewhere it never had an effect
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
