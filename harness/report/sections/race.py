"""The race (`order: race`): how it ended per saving mode, each drop with its reason, the
survivors ranked, the answer, and what the race cost beside a sweep of the same contenders."""

from __future__ import annotations

import matplotlib.pyplot as plt

from harness.analysis import race_answer
from harness.analysis.results import Results
from harness.report.blocks import Bullets, Figure, Paragraph, Section, Table
from harness.report.format import interval, mode
from harness.report.plots.style import figure_title
from harness.stats.pairing import rounds_run

ENDINGS = {
    "winner": "a winner",
    "tie": "a tie",
    "settled": "settled (no survivor can be more than the margin faster than the answer)",
}


def race_section(results: Results) -> Section | None:
    config = results.config
    if not config.order.raced:
        return None
    found = race_answer.answers(results.runs, config, results.cores)
    rules = config.race_rules
    intro = Paragraph(
        "Every round ran each surviving contender once, in a fresh random order, with a "
        "baseline visit at its start (the next round's visit closes it); a contender's time is "
        f"taken over the baseline interpolated at it. From {rules.first_test} complete rounds "
        f"on, a Friedman test over the rounds; when it rejected (p < {rules.alpha}), each "
        "contender was tested against the best by a one-sided Wilcoxon signed-rank test on its "
        f"per-round log-ratio less log(1 + {rules.margin / 2:g}), and dropped when slower by "
        f"more than {rules.margin / 2:.0%}, half the margin (with two left, the Wilcoxon test "
        f"alone). Survivors tie when each is within +-{rules.margin:.0%} of every other by "
        "two one-sided tests. The answer, the best-ranked of the fewest workers, is settled when "
        f"no survivor is more than {rules.margin:.0%} faster by a one-sided test and those of as "
        "many workers tie with it"
        + (
            ""
            if rules.settle_after is None
            else f"; from round {rules.settle_after} of stage 1 on"
            + ("" if rules.retie else ", and in stage 2 at once,")
            + " they need not"
        )
        + ". "
        + (
            "Every (strategy, W) raced at once."
            if rules.stage == "all"
            else "First the strategies at W = the usable cores, then "
            + ("every strategy of a tie" if rules.carry == "tied" else "the answer's strategy")
            + " at every W."
        )
    )
    blocks = [intro, _cost(results)]
    for answer in found:
        blocks += _answer_blocks(answer, results, rules.margin)
    if found:
        blocks.append(Figure("race.png", "survivors per round", lambda: _survivors(results, found)))
    return Section("race", "The race", blocks)


def _cost(results: Results) -> Paragraph:
    sessions = results.run_meta.sessions
    used = sum(s.duration_s or 0.0 for s in sessions)
    sweep = sessions[0].estimate_s if sessions else None
    rounds = rounds_run(results.runs)
    beside = (
        f", against {sweep / 60:.0f} min estimated for a sweep of every contender" if sweep else ""
    )
    return Paragraph(f"{rounds} rounds in {used / 60:.1f} min of this machine{beside}.")


def _answer_blocks(answer: race_answer.Answer, results: Results, margin: float) -> list:
    state, head = answer.standing, f"**{mode(answer.saving)}**: "
    if answer.verdict == "undecided":
        head += f"undecided after {answer.rounds} rounds; still in: "
        head += ", ".join(c.id for c in state.alive) + "."
        head += f" What ended it: {race_answer.why_undecided(answer, results.run_meta)}"
        first = state.stage == 1 and results.config.race_rules.stage == "cores"
        head += ", in the first stage, so no other W raced." if first else "."
    else:
        head += f"{ENDINGS[answer.verdict]} after {answer.after()}."
    if answer.pick is not None and answer.verdict == "undecided":
        head += f" Leading so far: **{answer.pick.strategy} at W = {answer.pick.workers}**."
    elif answer.pick is not None:
        head += (
            f" Answer: **{answer.pick.strategy} at W = {answer.pick.workers}**, the fewest workers "
            f"within +-{margin:.0%} of the best ({state.best})."
        )
    table = results.table.set_index("strategy workers saving".split())
    rows = []
    for r in answer.ranking:
        key = (r.cell.strategy, r.cell.workers, r.cell.saving)
        speed = table.loc[key] if key in table.index else None
        rows.append(
            [
                r.cell.strategy,
                str(r.cell.workers),
                interval(r.ratio, r.low, r.high),
                "—"
                if speed is None
                else interval(speed["speedup"], speed["speedup_ci_low"], speed["speedup_ci_high"]),
            ]
        )
    drops = [d.line() for d in state.drops] or ["none"]
    found = [Paragraph(head), Table(["survivor", "W", "T / T_best [95%]", "speedup [95%]"], rows)]
    found.append(Bullets([("Dropped:", drops)]))
    if answer.set_aside:
        end, ended, chosen = state.stage_ends[0]
        aside = [
            f"{r.cell.id}: {interval(r.ratio, r.low, r.high)} of {chosen}" for r in answer.set_aside
        ]
        found.append(
            Bullets([(f"Stage 1 ended ({ended}) after {end} rounds; not raced at other W:", aside)])
        )
    return found


def _survivors(results: Results, found: list[race_answer.Answer]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for answer in found:
        counts = answer.standing.alive_after
        ax.step(range(1, len(counts) + 1), counts, where="post", label=mode(answer.saving))
    ax.set_xlabel("round")
    ax.set_ylabel("contenders still in")
    ax.legend(fontsize=8)
    ax.set_title(figure_title(results) + ": the race")
    fig.tight_layout()
    return fig


SECTIONS = [race_section]
