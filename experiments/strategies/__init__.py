"""One module per strategy. Adding a strategy = adding one file here (and a test).

Each module defines `STRATEGY = experiments.contract.Strategy(...)` (see contract.py for every
field). Modules whose name starts with "_" are helpers, not strategies.

Strategies living outside this package are plugins, loaded from any of:
- the entry-point group `augscale.strategies` of an installed package (value: a module);
- the config key `plugins:` (module names, or paths of .py files), which the parent and every
  child process load before resolving a strategy.
Every strategy is checked against the contract when it is discovered; a module that breaks it
raises ContractError naming the module and the missing piece.

A variant is one strategy run with some options of its own, e.g. P_TORCH with in_order false.
Its label, `P_TORCH[in_order=false]` (variant_label), is its name everywhere a strategy name
goes (cells, tables, plots); get() and in_process() accept labels.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from experiments.contract import ContractError, Strategy, check

ENTRY_POINT_GROUP = "augscale.strategies"
BASELINE = "sequential"

_found: dict[str, Strategy] = {}
_origin: dict[str, str] = {}  # strategy name -> module it came from
_plugins_loaded: set[str] = set()


def registry() -> dict[str, Strategy]:
    """Every known strategy by name: this package's modules, then entry-point plugins."""
    if not _found:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                _add(importlib.import_module(f"{__name__}.{info.name}"))
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _add(_import(ep.value, f"entry point {ep.name!r}"))
    return _found


def shipped(name: str) -> bool:
    """Whether the strategy comes with augscale (a module of this package), not a plugin."""
    registry()
    return _origin.get(name, "").startswith(f"{__name__}.")


def load_plugins(plugins: Iterable[str]) -> None:
    """Load plugin modules (dotted names or .py paths) into the registry, once each."""
    registry()
    for plugin in plugins:
        if plugin not in _plugins_loaded:
            _add(_load_plugin(plugin))
            _plugins_loaded.add(plugin)


def get(name: str) -> Strategy:
    found = registry()
    name = base_name(name)
    if name not in found:
        known = ", ".join(found)
        raise ContractError(
            f"unknown strategy {name!r}; known: {known} (plugins load through the `plugins:` key)"
        )
    return found[name]


def find(label: str) -> Strategy | None:
    """The strategy of a name or variant label, or None if it is unknown here."""
    return registry().get(base_name(label))


def base_name(label: str) -> str:
    """The strategy name of a variant label: P_TORCH[in_order=false] -> P_TORCH."""
    return label.split("[", 1)[0]


def variant_label(name: str, options: Mapping[str, object]) -> str:
    """name[key=value,...] with the keys sorted, or the bare name without options."""
    if not options:
        return name
    return f"{name}[{','.join(f'{k}={label_value(v)}' for k, v in sorted(options.items()))}]"


def label_value(value: object) -> str:
    """An option's value as a label writes it: YAML's spelling of booleans and null."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def names() -> list[str]:
    return list(registry())


def in_process(name: str) -> bool:
    """Whether the strategy's workers are threads of the measuring process (sequential too)."""
    strategy = find(name)
    return name == BASELINE or bool(strategy and strategy.in_process)


def _add(module: ModuleType) -> None:
    strategy = check(getattr(module, "STRATEGY", None), module.__name__)
    if strategy.name in _found and _origin[strategy.name] != module.__name__:
        raise ContractError(
            f"{module.__name__}: strategy name {strategy.name!r} is already taken by "
            f"{_origin[strategy.name]}; "
            "give the copy a name of its own"
        )
    _found[strategy.name] = strategy
    _origin[strategy.name] = module.__name__


def _load_plugin(plugin: str) -> ModuleType:
    if not plugin.endswith(".py"):
        return _import(plugin, f"plugin {plugin!r}")
    path = Path(plugin).resolve()
    if not path.is_file():
        raise ContractError(f"plugin {plugin}: no such file")
    # Importable by its own name, so that spawn/forkserver workers can unpickle its functions.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    existing = sys.modules.get(path.stem)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() != path:
        raise ContractError(
            f"plugin {plugin}: a module named {path.stem!r} is already imported; rename the file"
        )
    return _import(path.stem, f"plugin {plugin}")


def _import(module: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ContractError(f"{what}: cannot import {module} ({err})") from None
