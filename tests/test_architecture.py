"""Keeps docs/ARCHITECTURE.md true: its module table against the code, and the layer rules.

Pure `ast`/`tokenize` over every .py file under experiments/ and harness/: nothing of the
project is imported, so this runs in well under a second and cannot be fooled by import-time
side effects.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
PACKAGES = ("experiments", "harness")
LAZY_WORD = re.compile(r"\blazy\b", re.IGNORECASE)
# A table row: | `module` | 3 plan & store | job |
ROW = re.compile(
    r"^\|\s*`(?P<module>[\w.]+)`\s*\|\s*(?P<layer>[^|]*?)\s*\|\s*(?P<job>.*?)\s*\|\s*$"
)
LAYER_CELL = re.compile(r"^(?P<number>\d+)\s+(?P<name>\S.*)$")


# --- helpers ---------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    """Dotted module name of a file under ROOT: harness/report/__init__.py -> harness.report."""
    parts = list(path.resolve().relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def source_files() -> tuple[Path, ...]:
    return tuple(sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")))


@cache
def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(_source(path), filename=str(path))


@cache
def modules_on_disk() -> frozenset[str]:
    return frozenset(module_name(p) for p in source_files())


def is_project(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def is_ancestor(package: str, module: str) -> bool:
    """True when `package` is a package enclosing `module` (harness.report for
    harness.report.html)."""
    return module.startswith(package + ".")


def _resolve_relative(importer: str, is_package: bool, level: int, target: str | None) -> str:
    """`from ..x import y` inside `importer` -> the absolute name of `..x`."""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


class _ImportVisitor(ast.NodeVisitor):
    def __init__(self, importer: str, is_package: bool, known: frozenset[str]) -> None:
        self.importer, self.is_package, self.known = importer, is_package, known
        self.found: set[tuple[str, int, bool]] = set()
        self._depth = 0  # function bodies we are inside

    def _function(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.add((alias.name, node.lineno, self._depth > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = (
            _resolve_relative(self.importer, self.is_package, node.level, node.module)
            if node.level
            else node.module or ""
        )
        self.found.add((base, node.lineno, self._depth > 0))
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if (
                sub in self.known
            ):  # `from harness.report import html` also imports harness.report.html
                self.found.add((sub, node.lineno, self._depth > 0))


def imports_of(path: Path) -> set[tuple[str, int, bool]]:
    """Every import in a file, anywhere in it (functions, `if TYPE_CHECKING:`, try blocks):
    (absolute module name, line, inside a function body). Relative imports are resolved;
    `from P import x` yields P and, when x is a module on disk, P.x."""
    visitor = _ImportVisitor(module_name(path), path.name == "__init__.py", modules_on_disk())
    visitor.visit(_tree(path))
    return visitor.found


@cache
def project_imports() -> dict[str, frozenset[tuple[str, int, bool]]]:
    """module -> its imports of project modules (experiments.*, harness.*)."""
    return {
        module_name(p): frozenset(i for i in imports_of(p) if is_project(i[0]))
        for p in source_files()
    }


def table_rows(doc: str) -> list[tuple[str, int, str, str]]:
    """The module table's rows: (module, layer number, layer name, job). A row whose layer cell
    does not read `<number> <name>` gets number -1, which the meta-test reports."""
    rows, in_table = [], False
    for line in doc.splitlines():
        if re.match(r"^\|\s*module\s*\|\s*layer\s*\|\s*job\s*\|", line):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            m = ROW.match(line)
            if m is None:
                continue  # the |---| separator
            layer = LAYER_CELL.match(m["layer"])
            rows.append(
                (
                    m["module"],
                    int(layer["number"]) if layer else -1,
                    layer["name"].strip() if layer else m["layer"],
                    m["job"],
                )
            )
    return rows


def layer_table(doc: str) -> dict[str, int]:
    """module -> layer number, from the doc's `module | layer | job` table."""
    return {module: layer for module, layer, _, _ in table_rows(doc)}


@cache
def documented() -> dict[str, int]:
    return layer_table(DOC.read_text(encoding="utf-8"))


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components with more than one module, or a self-loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        found.append(sorted(component))
    return found


def import_graph() -> dict[str, set[str]]:
    """Edges between modules on disk, every import counted, except a module importing a package
    that encloses it (harness.report.markdown -> harness.report)."""
    on_disk = modules_on_disk()
    return {
        importer: {
            m
            for m, _, _ in imports
            if m in on_disk and m != importer and not is_ancestor(m, importer)
        }
        for importer, imports in project_imports().items()
    }


def comment_lines(path: Path) -> dict[int, str]:
    """line -> the text of the `#` comment on it (tokenize: comments only, never strings)."""
    with path.open("rb") as f:
        return {
            tok.start[0]: tok.string
            for tok in tokenize.tokenize(f.readline)
            if tok.type == tokenize.COMMENT
        }


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- the doc against the code ----------------------------------------------------------------


def test_every_module_is_documented_and_every_documented_module_exists() -> None:
    on_disk, listed = set(modules_on_disk()), set(documented())
    missing = sorted(on_disk - listed)  # on disk, not in the doc
    extra = sorted(listed - on_disk)  # in the doc, not on disk
    assert not missing and not extra, (
        "docs/ARCHITECTURE.md's module table and the code disagree:\n"
        f"  on disk but not in the doc ({len(missing)}): {', '.join(missing) or '-'}\n"
        f"  in the doc but not on disk ({len(extra)}): {', '.join(extra) or '-'}"
    )


def test_no_import_goes_up_a_layer() -> None:
    layers = documented()
    upward = []
    for importer, imports in sorted(project_imports().items()):
        if importer not in layers:
            continue  # undocumented modules are reported by the test above
        for imported, line, _ in sorted(imports):
            if imported in layers and layers[imported] > layers[importer]:
                upward.append(
                    f"{importer} (layer {layers[importer]}) imports {imported} "
                    f"(layer {layers[imported]}) at line {line}"
                )
    assert not upward, "imports against the layers of docs/ARCHITECTURE.md:\n  " + "\n  ".join(
        upward
    )


def test_experiments_never_imports_harness() -> None:
    bad = [
        f"{importer} imports {imported} at line {line}"
        for importer, imports in sorted(project_imports().items())
        if importer.split(".")[0] == "experiments"
        for imported, line, _ in sorted(imports)
        if imported.split(".")[0] == "harness"
    ]
    assert not bad, "experiments/* must not import harness/*:\n  " + "\n  ".join(bad)


def test_no_import_cycles() -> None:
    cycles = strongly_connected(import_graph())
    assert not cycles, (
        "import cycles (each line one strongly connected component):\n  "
        + "\n  ".join(" <-> ".join(c) for c in cycles)
    )


def test_every_function_level_import_says_why_it_is_lazy() -> None:
    unannotated = []
    for path in source_files():
        lines = {line for _, line, in_function in imports_of(path) if in_function}
        if not lines:
            continue
        comments = comment_lines(path)
        spans = {
            n.lineno: n.end_lineno or n.lineno
            for n in ast.walk(_tree(path))
            if isinstance(n, ast.Import | ast.ImportFrom)
        }
        for line in sorted(lines):
            nearby = [comments.get(n, "") for n in range(line - 1, spans[line] + 1)]
            if not any(LAZY_WORD.search(c) for c in nearby):
                source = _source(path).splitlines()[line - 1].strip()
                unannotated.append(f"{_rel(path)}:{line}: {source}")
    assert not unannotated, (
        f"{len(unannotated)} imports in function bodies without a '# lazy: why' comment on the "
        "same line or the line above:\n  " + "\n  ".join(unannotated)
    )


# --- the doc itself --------------------------------------------------------------------------


def test_doc_table_is_consistent() -> None:
    rows = table_rows(DOC.read_text(encoding="utf-8"))
    assert len(rows) > 10, "docs/ARCHITECTURE.md: no `module | layer | job` table found"
    problems = []
    seen: dict[str, int] = {}
    for module, _, _, _ in rows:
        seen[module] = seen.get(module, 0) + 1
    problems += [f"{m} is in {n} rows" for m, n in sorted(seen.items()) if n > 1]
    problems += [
        f"{m}: layer cell {name!r} does not read '<number> <name>'"
        for m, number, name, _ in rows
        if number < 0
    ]
    names: dict[int, set[str]] = {}
    for _, number, name, _ in rows:
        if number >= 0:
            names.setdefault(number, set()).add(name)
    problems += [
        f"layer {n} has several names: {sorted(s)}" for n, s in sorted(names.items()) if len(s) > 1
    ]
    by_name: dict[str, set[int]] = {}
    for n, s in names.items():
        for name in s:
            by_name.setdefault(name, set()).add(n)
    problems += [
        f"layer name {name!r} has several numbers: {sorted(s)}"
        for name, s in sorted(by_name.items())
        if len(s) > 1
    ]
    if names and sorted(names) != list(range(max(names) + 1)):
        problems.append(f"layer numbers are not 0..{max(names)} without gaps: {sorted(names)}")
    numbers = [number for _, number, _, _ in rows]
    if numbers != sorted(numbers):
        problems.append("rows are not ordered by layer")
    problems += [
        f"{m}: experiments modules belong to layer 0, not {number}"
        for m, number, _, _ in rows
        if m.split(".")[0] == "experiments" and number != 0
    ]
    problems += [
        f"{m}: harness modules sit above layer 0"
        for m, number, _, _ in rows
        if m.split(".")[0] == "harness" and number == 0
    ]
    problems += [f"{m}: no job given" for m, _, _, job in rows if not job]
    problems += [
        f"{m}: not a module of {' or '.join(PACKAGES)}" for m, _, _, _ in rows if not is_project(m)
    ]
    assert not problems, "docs/ARCHITECTURE.md's module table:\n  " + "\n  ".join(problems)


# --- the helpers, on small known inputs ------------------------------------------------------


def test_helpers() -> None:
    assert module_name(ROOT / "harness" / "report" / "__init__.py") == "harness.report"
    assert module_name(ROOT / "experiments" / "strategies" / "p1.py") == "experiments.strategies.p1"
    assert _resolve_relative("harness.report", True, 1, "html") == "harness.report.html"
    assert _resolve_relative("harness.report.html", False, 1, None) == "harness.report"
    assert _resolve_relative("harness.report.html", False, 2, "stats") == "harness.stats"
    assert layer_table(
        "| module | layer | job |\n|---|---|---|\n| `a.b` | 3 plan & store | x |\n"
    ) == {"a.b": 3}
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []
    source = (
        "import os\n"
        "def f():\n"
        "    # lazy: heavy\n"
        "    from harness.report import html\n"
        "    import json  # lazy\n"
        "    if True:\n"
        "        import re\n"
    )
    visitor = _ImportVisitor("harness.report.sample", False, frozenset({"harness.report.html"}))
    visitor.visit(ast.parse(source))
    assert visitor.found == {
        ("os", 1, False),
        ("harness.report", 4, True),
        ("harness.report.html", 4, True),
        ("json", 5, True),
        ("re", 7, True),
    }
    comments = {
        t.start[0]: t.string
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type == tokenize.COMMENT
    }
    assert sorted(comments) == [3, 5]
