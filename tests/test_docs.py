"""The README and docs/ against the repository: links that resolve, a README a newcomer finishes,
every figure table checked against the committed run folder it names, and the facts the code
decides: which commands take the machine-wide lock, the run folder's format version, and the
README's durations against the meta.json of the run each cites.

A figure table carries a marker comment just above it:

    <!-- figures: results/<name>/<run>/tables/<file>.csv key=COLUMN [where=COL:VAL,...]
         col=SPEC col=SPEC ... -->

one `col=` per table column after the first. The first column is the row's key (its first word,
backticks and a trailing comma stripped), matched to the CSV's `key` column. A SPEC is `-` (text,
not checked) or `COL[%][,COL[%]...][@COL:VAL,...]`: the numbers printed in the cell, in order,
are the first of the CSV's columns on the row the key and the filters pick (`%`: shown times
100), each equal to the CSV's value rounded as printed; a text column is compared as text. A filter
value may list alternatives, `workers:1|2`. A cell "—" must have no such row or an empty value.

    <!-- figures: meta col=SPEC ... -->

is a table whose first column is a run folder; its columns are read from that folder's meta.json:
`duration` and `estimate` ("1 h 05 min", "4 min 14 s"), `ratio` (their quotient), `commit`
(first 7 characters), `date` (YYYY-MM-DD), as the report's header computes them, and `machine`
("AMD EPYC, 2 cores": the CPU model and physical cores), `config` (the config file's name).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# The pages whose figure tables are checked, and the heading under which every table must carry
# a marker ("" for every table of the page).
FIGURE_PAGES = {README: "What we found", ROOT / "docs" / "RESULTS.md": ""}
MAX_LINES = 300
MAX_WIDTH = 120

MARKER = re.compile(r"<!-- figures: (.*?) -->", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
DURATION = re.compile(r"(?:(\d+) h)?\s*(?:(\d+) min)?\s*(?:(\d+) s)?")
DASH = "—"


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def links(page: Path) -> list[str]:
    """Relative link targets of a markdown page, without their #anchors."""
    found = [m.group(1) for m in LINK.finditer(page.read_text())]
    return [t.split("#")[0] for t in found if not re.match(r"[a-z]+:", t) and t.split("#")[0]]


def test_the_readme_links_every_docs_page():
    linked = {(README.parent / t).resolve() for t in links(README)}
    docs = {p.resolve() for p in (ROOT / "docs").glob("*.md")}
    assert docs, "docs/ holds no page"
    assert not docs - linked, f"README.md links no {sorted(p.name for p in docs - linked)}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    targets = links(page)
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, f"{page.name} links what does not exist: {missing}"


def anchors(page: Path) -> set[str]:
    """The heading anchors GitHub makes: lower case, punctuation dropped, spaces to hyphens."""
    lines = page.read_text().splitlines()
    headings = [line.lstrip("#").strip() for line in lines if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_anchor_names_a_heading(page):
    found = [m.group(1) for m in LINK.finditer(page.read_text())]
    targets = [t.split("#") for t in found if "#" in t and not re.match(r"[a-z]+:", t)]
    wrong = [
        f"{path}#{anchor}"
        for path, anchor in targets
        if anchor not in anchors((page.parent / path) if path else page)
    ]
    assert not wrong, f"{page.name} links headings that do not exist: {wrong}"


def test_the_readme_is_short_and_narrow():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines, more than {MAX_LINES}"
    wide = [
        n for n, line in enumerate(lines, 1) if len(line) > MAX_WIDTH and not line.startswith("|")
    ]
    assert not wide, f"README.md lines over {MAX_WIDTH} characters (tables aside): {wide}"


def tables(text: str) -> list[tuple[str | None, list[list[str]], int]]:
    """Every markdown table: (its marker's text or None, its body rows as cells, its line)."""
    lines = text.splitlines()
    found = []
    n = 0
    while n < len(lines):
        if lines[n].startswith("|") and n + 1 < len(lines) and lines[n + 1].startswith("|---"):
            start = n
            n += 2
            rows = []
            while n < len(lines) and lines[n].startswith("|"):
                rows.append([c.strip() for c in lines[n].strip().strip("|").split("|")])
                n += 1
            found.append((marker_above(lines[:start]), rows, start + 1))
        else:
            n += 1
    return found


def marker_above(lines: list[str]) -> str | None:
    """The figures marker that ends right above a table (blank lines between allowed)."""
    above = "\n".join(lines).rstrip()
    if not above.endswith("-->"):
        return None
    found = MARKER.search(above[above.rfind("<!-- figures:") :])
    return found.group(1) if found else None


def marked(page: Path) -> list[tuple[str, list[list[str]], int]]:
    """The page's figure tables; every table under its figures heading must have a marker."""
    text = page.read_text()
    heading = ""
    headings: dict[int, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            heading = line
        headings[n] = heading
    out = []
    for marker, rows, line in tables(text):
        if marker is None:
            assert FIGURE_PAGES[page] not in headings[line], (
                f"{page.name}:{line}: a table under {headings[line]!r} lacks its figures marker"
            )
            continue
        out.append((marker, rows, line))
    return out


def parse_marker(marker: str) -> tuple[str, dict[str, str], list[str]]:
    words = marker.split()
    options = dict(w.split("=", 1) for w in words[1:] if not w.startswith("col="))
    columns = [w[len("col=") :] for w in words[1:] if w.startswith("col=")]
    return words[0], options, columns


def pairs(text: str) -> dict[str, str]:
    return dict(p.split(":", 1) for p in text.split(",")) if text else {}


def pick(frame: pd.DataFrame, where: dict[str, str]) -> pd.DataFrame:
    """The rows whose columns hold one of the values ("workers:1|2")."""
    for column, values in where.items():
        frame = frame[frame[column].astype(str).isin(values.split("|"))]
    return frame


def key_of(cell: str) -> str:
    return cell.split()[0].strip("`,")


def agrees(printed: str, value: float) -> bool:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(float(printed) - value) <= 0.5 * 10**-decimals + 1e-9


def check_csv(path: str, options: dict[str, str], specs: list[str], rows: list[list[str]]):
    """Every checked cell of the table against the CSV; returns how many figures it compared."""
    frame = pick(pd.read_csv(ROOT / path), pairs(options.get("where", "")))
    checked = 0
    for row in rows:
        assert len(row) == len(specs) + 1, f"{path}: row {row[0]!r} has {len(row)} cells"
        mine = frame[frame[options["key"]].astype(str) == key_of(row[0])]
        for cell, spec in zip(row[1:], specs, strict=True):
            if spec != "-":
                checked += check_cell(f"{path}: {row[0]!r} {spec}", cell, spec, mine)
    return checked


def check_cell(where: str, cell: str, spec: str, rows: pd.DataFrame) -> int:
    names, _, filters = spec.partition("@")
    columns = names.split(",")  # a trailing % on a column: shown times 100
    first = columns[0].rstrip("%")
    hit = pick(rows, pairs(filters))
    if cell == DASH:
        assert hit.empty or hit[first].isna().all(), f"{where}: has a value"
        return 0
    assert len(hit) == 1, f"{where}: {len(hit)} rows"
    value = hit[first].iloc[0]
    if isinstance(value, str):
        assert cell.strip("`") == value, f"{where}: {cell} vs {value}"
        return 1
    printed = NUMBER.findall(cell)
    assert 1 <= len(printed) <= len(columns), f"{where}: cell {cell!r}"
    for number, column in zip(printed, columns[: len(printed)], strict=True):
        value = float(hit[column.rstrip("%")].iloc[0]) * (100 if column.endswith("%") else 1)
        assert agrees(number, value), f"{where}: {column} printed {number}, the run has {value}"
    return len(printed)


def seconds(text: str) -> tuple[float, float]:
    """ "2 h 05 min" -> (7500, 60): the seconds and the unit of the smallest part shown."""
    h, m, s = DURATION.fullmatch(text.strip()).groups()
    unit = 1 if s else 60 if m else 3600
    return int(h or 0) * 3600 + int(m or 0) * 60 + int(s or 0), unit


def meta_figures(meta: dict) -> dict[str, object]:
    """What the report's header says of a run's duration (header.estimate_items); a folder
    from before sessions were recorded has its start and end, and no estimate."""
    sessions = [s for s in meta.get("sessions", []) if s.get("duration_s") is not None]
    if sessions:
        took = sum(s["duration_s"] for s in sessions)
        estimate = sessions[0]["estimate_s"]
    else:
        ended, started = (pd.Timestamp(meta[k]) for k in ("ended_at", "started_at"))
        took, estimate = (ended - started).total_seconds(), math.nan
    return {
        "duration": took,
        "estimate": estimate,
        "ratio": took / estimate,
        "commit": meta["git_commit"][:7],
        "date": meta["started_at"][:10],
        "machine": f"{meta['host']['cpu_model']}, {meta['host']['physical_cores']} cores",
        "config": Path(meta["config_file"]).name,
    }


def check_meta(specs: list[str], rows: list[list[str]]) -> int:
    checked = 0
    for row in rows:
        run = ROOT / row[0].strip("`")
        facts = meta_figures(json.loads((run / "meta.json").read_text()))
        for cell, spec in zip(row[1:], specs, strict=True):
            if spec == "-":
                continue
            text = cell.strip("`* ")
            if text == DASH:
                assert math.isnan(facts[spec]), f"{row[0]} {spec}: the run has {facts[spec]}"
            elif spec in ("duration", "estimate"):
                shown, unit = seconds(text)
                assert abs(shown - facts[spec]) < unit, f"{row[0]} {spec}: {text}"
            elif spec == "ratio":
                assert agrees(text, facts["ratio"]), f"{row[0]} ratio: {text}"
            else:
                assert text == facts[spec], f"{row[0]} {spec}: {text} vs {facts[spec]}"
            checked += 1
    return checked


@pytest.mark.parametrize("page", list(FIGURE_PAGES), ids=lambda p: p.name)
def test_figure_tables_match_their_committed_runs(page):
    found = marked(page)
    assert found, f"{page.name} has no figure table"
    for marker, rows, line in found:
        path, options, specs = parse_marker(marker)
        if path == "meta":
            checked = check_meta(specs, rows)
        else:
            checked = check_csv(path, options, specs, rows)
        assert checked, f"{page.name}:{line}: its figures marker checks no number"


def test_the_checker_catches_a_wrong_figure(tmp_path):
    """The check is real: a table with one figure off by a unit of its last digit fails."""
    path = "results/strong_scaling/20261205-114420/tables/strong.csv"
    frame = pd.read_csv(ROOT / path)
    row = frame[(frame.strategy == "P_1") & (frame.workers == 2) & frame.saving]
    right = f"{row.efficiency.iloc[0] * 100:.0f}%"
    wrong = f"{row.efficiency.iloc[0] * 100 + 1:.0f}%"
    options = {"key": "strategy", "where": "workers:2"}
    assert check_csv(path, options, ["efficiency%@saving:True"], [["P_1", right]]) == 1
    with pytest.raises(AssertionError):
        check_csv(path, options, ["efficiency%@saving:True"], [["P_1", wrong]])


# ---------------------------------------------------------------- facts the code decides

COMMAND_FILES = [ROOT / "harness" / "cli.py", *sorted((ROOT / "harness" / "commands").glob("*.py"))]
TAKES_LOCK = re.compile(r"""(?:measuring|MachineLock)\(\s*["'](\w[\w-]*)["']""")
SUBCOMMAND = re.compile(r"""add_parser\(\s*["'](\w[\w-]*)["']""")
NAMED = re.compile(r"`([\w-]+)`")
CLAUSE_END = re.compile(r"(?<=[.;:])\s+")
# The pages that must list the commands holding the lock.
LOCK_PAGES = {"README.md", "FAULTS.md", "ARCHITECTURE.md"}


def commands_in_code() -> tuple[set[str], set[str]]:
    """Every subcommand, and those that take the machine-wide lock, read from the code."""
    code = "\n".join(path.read_text() for path in COMMAND_FILES)
    return set(SUBCOMMAND.findall(code)), set(TAKES_LOCK.findall(code))


def clauses(text: str) -> list[str]:
    """A page's clauses: paragraphs and table cells, split after each . ; or :"""
    units = []
    for block in re.split(r"\n\s*\n", text):
        if block.lstrip().startswith("|"):
            units += [cell for line in block.splitlines() for cell in line.split("|")]
        else:
            units.append(" ".join(block.split()))
    return [clause for unit in units for clause in CLAUSE_END.split(unit)]


def lock_lists(text: str, commands: set[str]) -> list[tuple[str, set[str]]]:
    """("lock", names) for each clause listing commands that hold the machine-wide lock, and
    ("no lock", names) for each listing those that take none; a clause naming fewer than two
    commands lists nothing. A no-lock list ends where `--dry-run` is named: the commands named
    after it lock when they do measure."""
    found = []
    for clause in clauses(text):
        at = clause.find("machine-wide lock")
        if at >= 0:
            found.append(("lock", set(NAMED.findall(clause[:at])) & commands))
        rest = clause[at:] if at >= 0 else clause
        if re.search(r"\bno lock\b|\btakes? none\b", rest):
            listed = rest.split("--dry-run")[0]
            found.append(("no lock", set(NAMED.findall(listed)) & commands))
    return [(kind, names) for kind, names in found if len(names) >= 2]


def test_the_docs_list_the_commands_that_take_the_lock():
    commands, locking = commands_in_code()
    assert {"run", "verify", "report"} <= commands and {"run", "verify"} <= locking
    expected = {"lock": locking, "no lock": commands - locking}
    listed = set()
    for page in pages():
        for kind, names in lock_lists(page.read_text(), commands):
            assert names == expected[kind], (
                f"{page.name} lists {sorted(names)} as taking {kind}; the code: "
                f"{sorted(expected[kind])}"
            )
            if kind == "lock":
                listed.add(page.name)
    assert LOCK_PAGES <= listed, f"no list of the commands that lock in {LOCK_PAGES - listed}"


def test_the_lock_list_check_catches_a_missing_command():
    commands, locking = commands_in_code()
    text = (
        "`run`, `verify` and `seeds` hold a machine-wide lock. "
        "`report`, `trace` and a `--dry-run` of `run` or `aa` take no lock."
    )
    assert lock_lists(text, commands) == [
        ("lock", {"run", "verify", "seeds"}),
        ("no lock", {"report", "trace"}),
    ]
    assert {"run", "verify", "seeds"} != locking


def test_the_format_version_the_docs_state_is_the_codes():
    from harness.migrations import FORMAT_VERSION

    stated = [
        (page.name, int(n))
        for page in pages()
        for n in re.findall(r"format version (\d+)", page.read_text())
    ]
    assert stated, "no page states the run folder's format version"
    wrong = [(name, n) for name, n in stated if n != FORMAT_VERSION]
    assert not wrong, f"pages state format versions {wrong}; the code writes {FORMAT_VERSION}"


CITED_DURATION = re.compile(
    r"(\d+ h \d+ min|\d+ min(?: \d+ s)?|\d+ s) \(`?(results/[\w.-]+/\d{8}-\d{6})`?\)"
)
PRECISE_DURATION = re.compile(r"\d+ h \d+ min|\d+ min \d+ s")


def test_the_readmes_durations_are_those_of_the_runs_it_cites():
    text = README.read_text()
    cited = CITED_DURATION.findall(text)
    assert len(cited) >= 4, f"README.md cites the run of only {len(cited)} durations"
    for shown, run in cited:
        took = meta_figures(json.loads((ROOT / run / "meta.json").read_text()))["duration"]
        seconds_shown, unit = seconds(shown)
        assert abs(seconds_shown - took) < unit, f"README.md: {shown} for {run}: {took} s"
    uncited = set(PRECISE_DURATION.findall(text)) - {shown for shown, _ in cited}
    assert not uncited, f"README.md gives durations without the run they come from: {uncited}"


RESULTS_PAGE = ROOT / "docs" / "RESULTS.md"
MAX_RESULTS_LINES = 400
# A session log's marks: a time of day, a dirty commit, "this evening", "the third session".
NARRATIVE = re.compile(
    r"\b\d{1,2}:\d{2}\b|-dirty|\bthis (?:morning|afternoon|evening)\b"
    r"|\b(?:second|third|fourth|fifth|sixth) session\b",
    re.I,
)
RUN_FOLDER = re.compile(r"\b([a-z][\w.-]*/\d{8}-\d{6})\b")


def test_results_is_a_reference_not_a_log():
    text = RESULTS_PAGE.read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_RESULTS_LINES, f"RESULTS.md: {lines} lines, more than {MAX_RESULTS_LINES}"
    found = sorted(set(NARRATIVE.findall(text)))
    assert not found, f"RESULTS.md reads as a session log ({found}): move it to CHANGELOG.md"


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_cited_run_folder_is_committed(page):
    """The changelog may name removed folders (git history keeps them); every other page cites
    only folders in the tree."""
    if page.name == "CHANGELOG.md":
        return
    cited = {m.removeprefix("results/") for m in RUN_FOLDER.findall(page.read_text())}
    missing = sorted(r for r in cited if not (ROOT / "results" / r / "meta.json").is_file())
    assert not missing, f"{page.name} cites run folders not committed: {missing}"
