"""Why the verdict: the per-transform profile of the pipeline that `run` measured before the
sweep (profile.json, docs/PROFILE.md), the transform that dominates the time, the one that
limits threads, and the GIL's bound on threads. Only for a folder that has profile.json."""

from __future__ import annotations

from harness.analysis import gil
from harness.analysis.results import Results
from harness.report.blocks import Block, Paragraph, Section, Table
from harness.report.format import DASH
from harness.rundir.profile_file import Profile, TransformProfile


def profile_section(results: Results) -> Section | None:
    found = gil.read(results.run_dir)
    if found is None:
        return None
    w = found.workers
    intro = Paragraph(
        f"Measured on this machine before the sweep: {found.tasks} of the sweep's tasks "
        f"({found.image_size[0]}x{found.image_size[1]} input, {found.alone_task_ms:.2f} ms a "
        f"task on one thread), each transform timed per call alone, in {w} processes and in "
        f"{w} threads running the same tasks at once. A transform fires with its `p`, so its "
        "calls are counted. Off-CPU is the share of its wall time its thread was not on a CPU "
        f"under {w} threads: where threads wait, for the GIL or a core. Holds the GIL is the "
        f"share of its time it keeps it, from the transform run alone in {w} threads against "
        f"{w} processes; the Compose's own code is Python and holds it throughout. "
        "docs/PROFILE.md says how each figure is measured and where it misleads."
    )
    blocks: list[Block] = [intro, _table(found)]
    blocks.append(Paragraph(f"{gil.time_sentence(found)} {gil.threads_sentence(found)}"))
    if note := gil.busy_note(found):
        blocks.append(Paragraph(note))
    blocks += [Paragraph(_bound_text(found)), _bounds(found)]
    blocks.append(Paragraph(gil.measured_sentence(found)))
    return Section("profile", "Why: the pipeline's profile", blocks)


def _table(found: Profile) -> Table:
    w = found.workers
    head = [
        "transform",
        "calls",
        "ms per call alone",
        f"in {w} processes",
        f"in {w} threads",
        "slowdown under load",
        f"slowdown in {w} threads",
        f"off-CPU in {w} threads",
        "holds the GIL",
        "share of a task",
    ]
    return Table(head, [_row(t) for t in found.transforms], "profile")


def _row(t: TransformProfile) -> list[str]:
    return [
        t.name,
        str(t.calls),
        _ms(t.alone_ms),
        _ms(t.loaded_ms),
        _ms(t.threads_ms),
        _times(t.load_slowdown),
        _times(t.threads_slowdown),
        DASH if t.off_cpu is None else f"{t.off_cpu:.0%}",
        f"{t.gil:.0%}",
        f"{t.share:.0%}",
    ]


def _times(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}x"


def _ms(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f}"


def _bound_text(found: Profile) -> str:
    g = gil.gil_share(found)
    return (
        f"The pipeline holds the GIL {g:.0%} of a task ({gil.holders(found)}). With that share "
        "as Amdahl's serial part, W threads of one process give at most 1 / (g + (1 − g) / W) "
        "times one thread, whatever the cores; processes are not bound by it:"
    )


def _bounds(found: Profile) -> Table:
    g = gil.gil_share(found)
    rows = [[str(w), f"{gil.threads_bound(g, w):.1f}x"] for w in gil.BOUND_WORKERS]
    return Table(["W threads", "speedup at most"], rows, "gil-bound")


SECTIONS = [profile_section]
