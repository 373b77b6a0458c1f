"""A config file's YAML read into a dict, and pydantic's first complaint about it made one line
(harness/errors.py: file, key, fix): keys given twice are refused, deprecated keys moved, plugin
paths resolved. harness/config.py validates what this reads."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from harness.errors import HarnessError

# Old top-level keys that now live under `options:` -> the strategy they belong to.
LEGACY_OPTION_KEYS = {"dask": "P_DASK"}

FIXES = {
    "extra_forbidden": "remove it, or check its spelling against the README's list of keys",
    "missing": "add it",
    "int_type": "give a whole number",
    "bool_type": "write true or false",
    "literal_error": "use one of the values the message lists",
    "enum": "use one of the values the message lists",
    "greater_than": "give a number above the limit",
    "greater_than_equal": "give a number at or above the limit",
    "too_short": "list at least the minimum number of entries",
    "too_long": "list fewer entries",
    "list_type": "write a YAML list, e.g. [2, 4]",
    "string_pattern_mismatch": "use letters, digits, '_', '-' or '.' only (no '/')",
    "value_error": "correct the value as the message says (see README, 'Config keys')",
}


def read_yaml(path: Path) -> object:
    """The file's YAML; HarnessError for a missing file, malformed YAML or a key given twice."""
    if not path.is_file():
        raise HarnessError(
            str(path),
            None,
            "no such config file",
            "give the path of a YAML file, e.g. configs/quick_strong.yaml",
        )
    try:
        return yaml.load(path.read_text(), Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise HarnessError(
            where,
            None,
            f"malformed YAML ({getattr(err, 'problem', err)})",
            "fix the YAML syntax at that line",
        ) from None


def first_error(path: Path, err: ValidationError) -> HarnessError:
    """Pydantic's first complaint about a config, as one line naming the key and the fix."""
    e = err.errors()[0]
    msg = e["msg"].removeprefix("Value error, ")
    key = ".".join(str(p) for p in e["loc"]) or key_named_in(msg)
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    fix = FIXES.get(e["type"], FIXES["value_error"])
    return HarnessError(str(path), key, msg, fix)


def key_named_in(msg: str) -> str:
    """A whole-config check names its key first ("workers: must list ..."); use it as the key."""
    head = msg.split(":", 1)[0].split()[0] if msg else ""
    return head if head and head.replace(".", "").replace("_", "").isalpha() else "(top level)"


class UniqueKeyLoader(yaml.SafeLoader):
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


def move_legacy_keys(data: dict, path: Path) -> dict:
    """A deprecated top-level key moved under `options:`, with a note on stderr."""
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


def resolve_plugins(data: dict, path: Path) -> dict:
    """A plugin given as a .py path is relative to the config file's folder."""
    plugins = data.get("plugins")
    if not isinstance(plugins, list):
        return data
    resolved = [
        str((path.parent / p).resolve()) if isinstance(p, str) and p.endswith(".py") else p
        for p in plugins
    ]
    return {**data, "plugins": resolved}
