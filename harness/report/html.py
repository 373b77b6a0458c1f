"""report.html: the report as one self-contained page (plots embedded as data URIs, no scripts,
no external resources), rendered from templates/report.html.j2."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from harness import reference
from harness.report import ReportData, content

TEMPLATES = Path(__file__).resolve().parent / "templates"
INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"), (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>")]


def inline(text: object) -> Markup:
    """Escape, then turn the `code` and **bold** that content.py strings carry into HTML."""
    html = str(escape(str(text)))
    for pattern, repl in INLINE:
        html = pattern.sub(repl, html)
    return Markup(html)


def data_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["inline"] = inline
    return env


def context(data: ReportData) -> dict:
    plots = data.run_dir / "plots"
    ref, study = data.reference
    return {
        "title": content.title(data).lstrip("# "),
        "header": content.header_items(data),
        "setup": content.setup_items(data),
        "warnings": data.warnings,
        "table_title": "Table 1 (strong scaling)" if data.kind == "strong" else "Table 2 (weak scaling)",
        "paper": content.paper_table(data),
        "legend": content.legend(data),
        "details": content.detail_table(data),
        "phases": content.phases_table(data),
        "phase_notes": content.phase_notes(data),
        "sentences": [s.sentence for s in data.fits],
        "model_table": content.model_table(data),
        "karp_flatt": content.karp_flatt_table(data),
        "reproduction": content.reproduction_table(data) if len(ref) else None,
        "study": study,
        "reference_notes": reference.notes(data.meta, data.kind, study),
        "notes": content.notes(data),
        "images": {
            "scaling": data_uri(plots / f"{data.kind}_scaling.png"),
            "phases": data_uri(plots / "phases.png"),
            "models": data_uri(plots / "models.png"),
        },
        "kind": data.kind,
    }


def write(data: ReportData) -> list[Path]:
    out = data.run_dir / "report.html"
    out.write_text(environment().get_template("report.html.j2").render(**context(data)))
    return [out]
