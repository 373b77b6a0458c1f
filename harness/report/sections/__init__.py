"""What the report says, computed once, as data: an ordered list of section builders, each
(results) -> Section | None, made of the blocks in harness.report.blocks. report.md
(markdown.py) and report.html (html.py + templates/report.html.j2) only render these; every
sentence of the report is written in this package, or next to the numbers it describes
(models, checks, study).

The builders live by topic, each module with its own ordered SECTIONS:
- header: the title, "Run and machine", the warnings;
- measured: the study-shaped table, work at each size, every cell, seed sensitivity;
- costs: where the time goes, cores busy, why efficiency is lost, timelines;
- models: the replay bound, the scaling models, beside the study;
- endnotes: the notes.

To add a section, touch two files: a function computing its numbers in
harness/analysis/scaling.py, and a builder in the module of its topic, added to that module's
SECTIONS (example: "Cores busy", scaling.cores_busy_table and costs.cores_busy). Its tables
and figures then appear in both formats; a figure's draw function may live in
harness/report/plots/. Numbers several sections share are cached on
harness.analysis.results.Results.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.analysis.results import Results
from harness.report.blocks import (
    Block,
    Bullets,
    Facts,
    Figure,
    Paragraph,
    Section,
    Table,
    Warnings,
    unavailable,
)
from harness.report.format import DASH, fmt, interval, marks
from harness.report.sections import costs, endnotes, header, measured, models
from harness.report.sections.costs import (
    cores_busy,
    timelines,
    where_the_time_goes,
    why_efficiency_is_lost,
)
from harness.report.sections.endnotes import busy_processes_note, notes, strategies_note
from harness.report.sections.header import (
    header_items,
    run_and_machine,
    setup_items,
    title,
    warnings,
)
from harness.report.sections.measured import (
    every_cell,
    paper_shaped,
    seed_sensitivity,
    work_at_each_size,
)
from harness.report.sections.models import beside_the_study, replay_bound, scaling_models

__all__ = [
    "DASH",
    "SECTIONS",
    "Block",
    "Bullets",
    "Facts",
    "Figure",
    "Paragraph",
    "Section",
    "Table",
    "Warnings",
    "beside_the_study",
    "build",
    "busy_processes_note",
    "cores_busy",
    "every_cell",
    "figures",
    "fmt",
    "header_items",
    "interval",
    "marks",
    "notes",
    "paper_shaped",
    "replay_bound",
    "run_and_machine",
    "scaling_models",
    "seed_sensitivity",
    "setup_items",
    "strategies_note",
    "timelines",
    "title",
    "unavailable",
    "warnings",
    "where_the_time_goes",
    "why_efficiency_is_lost",
    "work_at_each_size",
]

# The report, in order: each topic's sections, in the order of the topics.
SECTIONS: list[Callable[[Results], Section | None]] = [
    *header.SECTIONS,
    *measured.SECTIONS,
    *costs.SECTIONS,
    *models.SECTIONS,
    *endnotes.SECTIONS,
]


def build(results: Results) -> list[Section]:
    """Every section the run has, in order."""
    return [section for builder in SECTIONS if (section := builder(results)) is not None]


def figures(sections: list[Section]) -> list[Figure]:
    return [block for s in sections for block in s.blocks if isinstance(block, Figure)]
