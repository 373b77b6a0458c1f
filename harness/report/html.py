"""report.html: the sections (harness.report.sections) as one self-contained page (plots
embedded as data URIs, no scripts, no external resources), through one generic template that
renders each block by its kind."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from harness.report import blocks as b

TEMPLATES = Path(__file__).resolve().parent / "templates"
INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
]


def inline(text: object) -> Markup:
    """Escape, then turn the `code` and **bold** that section strings carry into HTML."""
    html = str(escape(str(text)))
    for pattern, repl in INLINE:
        html = pattern.sub(repl, html)
    return Markup(html)


def data_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["inline"] = inline
    return env


def render(run_dir: Path, title: str, sections: list[b.Section]) -> str:
    images = {f.path: data_uri(run_dir / f.path) for f in b.figures(sections)}
    template = environment().get_template("report.html.j2")
    return template.render(title=title, sections=sections, images=images)


def write(run_dir: Path, title: str, sections: list[b.Section]) -> list[Path]:
    """Write report.html; after the plots, which it embeds."""
    out = run_dir / "report.html"
    out.write_text(render(run_dir, title, sections))
    return [out]
