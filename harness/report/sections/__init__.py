"""What the report says, computed once, as data: an ordered list of section builders, each
(results) -> Section | None, made of the blocks in harness.report.blocks. report.md
(markdown.py) and report.html (html.py + templates/report.html.j2) only render these; every
sentence of the report is written in this package, or next to the numbers it describes
(models, checks, study).

The builders live by topic, each module with its own ordered SECTIONS:
- header: the title, "Run and machine", the warnings;
- measured: the study-shaped table, work at each size, every cell, seed sensitivity;
- race: a race's answer (order: race);
- paired: in paired rounds, the drift, what pairing did, the paired comparisons;
- costs: where the time goes, cores busy, why efficiency is lost, timelines;
- profile: why, from the pipeline's per-transform profile (when the folder has profile.json);
- models: the replay bound, the scaling models, beside the study;
- endnotes: the notes.

To add a section, touch two files: a function computing its numbers in
harness/analysis/, and a builder in the module of its topic, added to that module's
SECTIONS (example: "Cores busy", phases.cores_busy_table and costs.cores_busy). Its tables
and figures then appear in both formats; a figure's draw function may live in
harness/report/plots/. Numbers several sections share are cached on
harness.analysis.results.Results.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.analysis.results import Results
from harness.report.blocks import Section
from harness.report.sections import (
    costs,
    endnotes,
    header,
    measured,
    models,
    paired,
    profile,
    race,
)
from harness.report.sections.header import title

__all__ = ["SECTIONS", "build", "title"]

# The report, in order: each topic's sections, in the order of the topics.
SECTIONS: list[Callable[[Results], Section | None]] = [
    *header.SECTIONS,
    *race.SECTIONS,
    *measured.SECTIONS,
    *paired.SECTIONS,
    *costs.SECTIONS,
    *profile.SECTIONS,
    *models.SECTIONS,
    *endnotes.SECTIONS,
]


def build(results: Results) -> list[Section]:
    """Every section the run has, in order."""
    return [section for builder in SECTIONS if (section := builder(results)) is not None]
