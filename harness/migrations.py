"""The run folder's format version and its migrations: `FORMAT_VERSION` is written into every
meta.json, and readers call `read_meta_file` (or `migrate_meta`): a newer version is refused, an
older one is brought up to date step by step (pyperf's `_bench.py` does the same). When the
meaning of stored data changes, bump FORMAT_VERSION and add a step to _MIGRATIONS.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import HarnessError

FORMAT_VERSION = 7


def migrate_meta(meta: dict, where: str) -> dict:
    """meta.json brought up to FORMAT_VERSION; HarnessError for a newer or unknown version."""
    version = meta.get("format_version", 1)
    if not isinstance(version, int) or version < 1:
        raise HarnessError(
            where,
            "format_version",
            f"unknown format version {version!r}",
            "give a folder written by `python -m harness run`",
        )
    if version > FORMAT_VERSION:
        raise HarnessError(
            where,
            "format_version",
            f"written by a newer augscale (format {version}; "
            f"this one reads up to {FORMAT_VERSION})",
            "upgrade augscale (git pull, make install)",
        )
    for step in range(version, FORMAT_VERSION):
        meta = _MIGRATIONS[step](meta)
    return {**meta, "format_version": FORMAT_VERSION}


def _v1_to_v2(meta: dict) -> dict:
    """v2 moved P_DASK's `dask:` key into the per-strategy `options:` mapping."""
    config = dict(meta.get("config") or {})
    dask = config.pop("dask", None)
    options = dict(config.get("options") or {})
    if dask and dask != {"scheduler": None, "data": "scatter"}:
        options["P_DASK"] = dask
    config["options"] = options
    config.setdefault("plugins", [])
    return {**meta, "config": config}


def _v2_to_v3(meta: dict) -> dict:
    """v3 lets `strategies:` hold variants ({NAME: {option: value}}) besides names; a v2 list of
    names is a valid v3 list, so nothing changes. The bump keeps an older augscale, which would
    take a variant's mapping for a name, from reading a v3 folder."""
    return meta


def _v3_to_v4(meta: dict) -> dict:
    """v4 made two rules of paired rounds config keys, with new defaults; a v3 folder keeps the
    rules it was measured under, so its replay (who ran in which round, why a cell stopped)
    tells what happened: a paired ratio could stop futile from 6 rounds
    (`repeats.futile_after`), and a race settled on one of equal W only by a tie
    (`race.settle_after: null`)."""
    config = dict(meta.get("config") or {})
    if config.get("order") in ("rounds", "race") and isinstance(config.get("repeats"), dict):
        config["repeats"] = {**config["repeats"], "futile_after": 6}
    if config.get("order") == "race":
        config["race"] = {**(config.get("race") or {}), "settle_after": None}
    return {**meta, "config": config}


def _v4_to_v5(meta: dict) -> dict:
    """v5's race takes stage 1's verdict on the strategies as given in stage 2 (`race.retie`,
    false); a v4 race asked the strategies stage 1 carried on to tie again."""
    config = dict(meta.get("config") or {})
    if config.get("order") == "race":
        config["race"] = {**(config.get("race") or {}), "retie": True}
    return {**meta, "config": config}


def _v5_to_v6(meta: dict) -> dict:
    """v6's race carries only the answer of a tie into stage 2 (`race.carry: answer`); a v5
    race carried every tied strategy."""
    config = dict(meta.get("config") or {})
    if config.get("order") == "race":
        config["race"] = {**(config.get("race") or {}), "carry": "tied"}
    return {**meta, "config": config}


def _v6_to_v7(meta: dict) -> dict:
    """v7's config runs in paired rounds to a precision target when it names neither `order`
    nor `repeats`; a v6 config without them ran in sequential order, 3 runs a cell. v7 stops a
    cell as futile only when the MAD of its values agrees with its interval
    (`repeats.futility: robust`); v6 judged from the interval alone."""
    config = dict(meta.get("config") or {})
    config.setdefault("order", "sequential")
    config.setdefault("repeats", 3)
    if isinstance(config["repeats"], dict):
        config["repeats"] = {"futility": "interval", **config["repeats"]}
    return {**meta, "config": config}


_MIGRATIONS = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
    6: _v6_to_v7,
}


def read_meta_file(path: Path) -> dict:
    try:
        meta = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise HarnessError(
            str(path),
            None,
            f"cannot read it ({type(err).__name__}: {err})",
            "restore the file from the run's copy, or re-run",
        ) from None
    if not isinstance(meta, dict):
        raise HarnessError(str(path), None, "not a JSON object", "restore the file, or re-run")
    return migrate_meta(meta, str(path))
