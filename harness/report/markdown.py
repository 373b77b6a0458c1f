"""report.md: the sections (harness.report.sections) rendered as markdown, nothing more."""

from __future__ import annotations

from pathlib import Path

from harness.report import blocks as b


def table(block: b.Table) -> list[str]:
    lines = ["| " + " | ".join(block.head) + " |", "|" + "---|" * len(block.head)]
    return lines + ["| " + " | ".join(row) + " |" for row in block.rows]


def render_block(block: b.Block) -> list[str]:
    if isinstance(block, b.Facts):
        return [f"- **{label}:** {value}" for label, value in block.items]
    if isinstance(block, b.Paragraph):
        return [block.text]
    if isinstance(block, b.Bullets):
        lines = []
        for text, sub in block.entries:
            lines += [f"- {text}"] + [f"  - {item}" for item in sub]
        return lines
    if isinstance(block, b.Warnings):
        return [f"- **{block.label}:** {item}" for item in block.items]
    if isinstance(block, b.Table):
        return table(block)
    if isinstance(block, b.Figure):
        return [f"![{block.alt}]({block.path})"]
    raise TypeError(f"no markdown for {type(block).__name__}")


def render(title: str, sections: list[b.Section]) -> str:
    lines = [f"# {title}"]
    for section in sections:
        lines += ["", f"## {section.title}"]
        for block in section.blocks:
            lines += [""] + render_block(block)
    return "\n".join(lines) + "\n"


def write(run_dir: Path, title: str, sections: list[b.Section]) -> list[Path]:
    out = run_dir / "report.md"
    out.write_text(render(title, sections))
    return [out]
