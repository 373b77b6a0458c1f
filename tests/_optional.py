"""The policy for optional parts a test needs (a browser, torch, dask, ...), in one place.

Locally, a test whose optional part is missing is skipped. Under CI (the environment variable
CI set to true) the same missing part fails the test: CI installs every optional part, so a
missing one there is a broken set-up, not a reason to pass quietly.

    from _optional import require
    require("chromium", Path("/usr/bin/chromium").is_file(), "apt-get install chromium")
    torch = require_module("torch", "pip install torch")
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

import pytest

TRUE = {"1", "true", "yes"}


def in_ci() -> bool:
    """True when the environment variable CI says this is a CI run (CI=true; 1 and yes count
    too)."""
    return os.environ.get("CI", "").strip().lower() in TRUE


def require(part: str, available: bool, install_hint: str) -> None:
    """Return if `part` is available; otherwise skip the test, or fail it under CI=true."""
    if available:
        return
    message = f"{part} is missing; install it with: {install_hint}"
    if in_ci():
        pytest.fail(f"CI=true, so a missing optional part fails the test: {message}", pytrace=False)
    pytest.skip(message)


def require_module(name: str, install_hint: str, part: str | None = None) -> ModuleType:
    """Import and return module `name`, with require()'s policy when it cannot be found."""
    require(part or f"Python package {name!r}", findable(name), install_hint)
    return importlib.import_module(name)


def findable(name: str) -> bool:
    """True when module `name` (dotted names too) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a dotted name whose parent package is missing
        return False


def require_strategy(name: str) -> None:
    """require() each optional module strategy `name` needs (its `requires`, from its extra:
    torch for P_TORCH)."""
    from experiments import strategies  # lazy: only the tests of strategies need the registry

    strategy = strategies.get(name)
    for module in strategy.requires:
        require_module(module, f"make install EXTRAS={strategy.extra}")
