"""Renders a run folder's report from runs.parquet + meta.json.

sections/ says what the report holds, once, as data, in the blocks of blocks.py (numbers
written by format.py); markdown.py and html.py render it, plots/ draws its figures,
table_csv.py writes the long-form table.
"""

from __future__ import annotations

from pathlib import Path

from harness.analysis.results import load_results
from harness.report import blocks, html, markdown, plots, sections, table_csv


def write_report(run_dir: Path) -> list[Path]:
    """Write tables/<kind>.csv, plots/*.png, report.md and report.html into the run folder;
    return the written paths."""
    results = load_results(Path(run_dir))
    content = sections.build(results)
    title = sections.title(results)
    written = table_csv.write(results)
    written += [plots.save(f.draw(), results.run_dir / f.path) for f in blocks.figures(content)]
    written += markdown.write(results.run_dir, title, content)
    written += html.write(results.run_dir, title, content)  # embeds the plots: after them
    return written
