"""A config's `strategies:` entries parsed: each a strategy name, or a variant of one with its
own options and worker counts. The label a variant gets (P_TORCH[in_order=false]) names its cells,
so an option value must be safe in cell ids and file names."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from experiments import strategies


class Variant(NamedTuple):
    """One `strategies:` entry: its label, strategy name, own options and own worker counts."""

    label: str
    name: str
    options: dict[str, Any]
    workers: list[int] | None  # None: every worker count of the sweep


def variants(entries: list[Any]) -> list[Variant]:
    """Each `strategies:` entry: a name, or a mapping of one name to that variant's options,
    with an optional `workers: [...]` (a subset of the sweep's) beside it; ValueError else."""
    found = []
    for entry in entries:
        if isinstance(entry, str) and "[" not in entry:
            found.append(Variant(entry, entry, {}, None))
            continue
        names = [k for k in entry if k != "workers"] if isinstance(entry, dict) else []
        if len(names) != 1:
            raise ValueError(
                f"entry {entry!r} must be a strategy name or one variant "
                "{NAME: {option: value}}, e.g. {P_TORCH: {in_order: false}}"
            )
        name, own, workers = names[0], entry[names[0]], entry.get("workers")
        own = dict(own or {}) if isinstance(own, dict | type(None)) else None
        if not isinstance(name, str) or own is None:
            raise ValueError(f"variant {entry!r} must be NAME: {{option: value, ...}}")
        bad = [k for k, v in own.items() if not _label_safe(v)]
        if bad:
            raise ValueError(
                f"variant {name}: option {bad[0]} must be true/false, a number or a plain word "
                f"(letters, digits, '_.:+-'); give other values under options.{name}"
            )
        twin = own.pop(TWIN, None)  # the A/A command's second label: no option of the strategy
        label = strategies.variant_label(name, {**own, **({TWIN: twin} if twin else {})})
        found.append(Variant(label, name, own, _entry_workers(label, workers)))
    return found


TWIN = "aa"  # {NAME: {aa: B}}: the same strategy and options under a second label (`aa` command)


def twin_of(label: str) -> str | None:
    """The label an A/A twin repeats (P_1[aa=B] -> P_1), or None for a label that is no twin."""
    name, _, rest = label.partition("[")
    options = [o for o in rest.rstrip("]").split(",") if o] if rest else []
    if not any(o.startswith(f"{TWIN}=") for o in options):
        return None
    kept = [o for o in options if not o.startswith(f"{TWIN}=")]
    return f"{name}[{','.join(kept)}]" if kept else name


def _entry_workers(label: str, workers: object) -> list[int] | None:
    if workers is None:
        return None
    if not (
        isinstance(workers, list)
        and workers
        and all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in workers)
    ):
        raise ValueError(f"{label}: workers must be a list of worker counts, e.g. [2, 4]")
    return list(workers)


def _label_safe(value: object) -> bool:
    """A value that can stand in a label, and so in cell ids and file names."""
    if value is None or isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and bool(re.fullmatch(r"[A-Za-z0-9_.:+-]+", value))
