"""The blocks a report section holds, as plain data: facts, paragraphs, bullets, tables,
figures and warnings. report.md (markdown.py) and report.html (html.py) render these and
nothing else, so a section written once reads the same in both formats.

Strings may carry `code` and **bold**, which markdown keeps and html converts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from matplotlib.figure import Figure as MplFigure


@dataclass(frozen=True)
class Facts:
    """Label: value pairs."""

    items: list[tuple[str, str]]
    kind: ClassVar[str] = "facts"


@dataclass(frozen=True)
class Paragraph:
    text: str
    css: str = ""
    kind: ClassVar[str] = "paragraph"


@dataclass(frozen=True)
class Bullets:
    """A list; an item is a string, or (string, sub-items)."""

    items: list[str | tuple[str, list[str]]]
    css: str = ""
    kind: ClassVar[str] = "bullets"

    @property
    def entries(self) -> list[tuple[str, list[str]]]:
        return [(item, []) if isinstance(item, str) else item for item in self.items]


@dataclass(frozen=True)
class Table:
    head: list[str]
    rows: list[list[str]] = field(default_factory=list)
    css: str = ""
    kind: ClassVar[str] = "table"


@dataclass(frozen=True)
class Figure:
    """A plot: drawn by `draw`, saved as plots/<file>, linked (markdown) or embedded (html)."""

    file: str
    alt: str
    draw: Callable[[], MplFigure]
    kind: ClassVar[str] = "figure"

    @property
    def path(self) -> str:
        return f"plots/{self.file}"


@dataclass(frozen=True)
class Warnings:
    items: list[str]
    label: str = "Warning"
    kind: ClassVar[str] = "warnings"


Block = Facts | Paragraph | Bullets | Table | Figure | Warnings


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: list[Block]

    @classmethod
    def unavailable(cls, section_id: str, name: str, why: str) -> Section:
        """A section the run folder cannot fill, kept in place with the reason."""
        return cls(section_id, name, [Paragraph(f"Unavailable: {why}")])


def figures(sections: list[Section]) -> list[Figure]:
    """Every figure of the report, in order: what the plots step draws and the html embeds."""
    return [block for s in sections for block in s.blocks if isinstance(block, Figure)]
