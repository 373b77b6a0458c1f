"""report.md: the sections (harness.report.sections) rendered as markdown, nothing more."""

from __future__ import annotations

from pathlib import Path

from harness.report import sections as s


def table(block: s.Table) -> list[str]:
    lines = ["| " + " | ".join(block.head) + " |", "|" + "---|" * len(block.head)]
    return lines + ["| " + " | ".join(row) + " |" for row in block.rows]


def render_block(block: s.Block) -> list[str]:
    if isinstance(block, s.Facts):
        return [f"- **{label}:** {value}" for label, value in block.items]
    if isinstance(block, s.Paragraph):
        return [block.text]
    if isinstance(block, s.Bullets):
        lines = []
        for text, sub in block.entries:
            lines += [f"- {text}"] + [f"  - {item}" for item in sub]
        return lines
    if isinstance(block, s.Warnings):
        return [f"- **{block.label}:** {item}" for item in block.items]
    if isinstance(block, s.Table):
        return table(block)
    if isinstance(block, s.Figure):
        return [f"![{block.alt}]({block.path})"]
    raise TypeError(f"no markdown for {type(block).__name__}")


def render(title: str, sections: list[s.Section]) -> str:
    lines = [f"# {title}"]
    for section in sections:
        lines += ["", f"## {section.title}"]
        for block in section.blocks:
            lines += [""] + render_block(block)
    return "\n".join(lines) + "\n"


def write(run_dir: Path, title: str, sections: list[s.Section]) -> list[Path]:
    out = run_dir / "report.md"
    out.write_text(render(title, sections))
    return [out]
