"""Keeps docs/ARCHITECTURE.md true: its layer table against the code, and the layer rules.

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
# A layer row: | 3 | run folder | `harness/rundir/` | what lives there |
ROW = re.compile(
    r"^\|\s*(?P<number>\d+)\s*\|\s*(?P<name>[^|]*?)\s*\|\s*(?P<paths>[^|]*?)\s*\|\s*(?P<job>.*?)\s*\|\s*$"
)
PATH = re.compile(r"`([\w./]+)`")


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


def table_rows(doc: str) -> list[tuple[int, str, tuple[str, ...], str]]:
    """The layer table's rows: (number, name, paths, job). A path is a folder (`harness/plan/`)
    or a file (`harness/errors.py`) relative to the repository."""
    rows, in_table = [], False
    for line in doc.splitlines():
        if re.match(r"^\|\s*layer\s*\|\s*name\s*\|\s*where\s*\|", line):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            m = ROW.match(line)
            if m is not None:
                paths = tuple(PATH.findall(m["paths"]))
                rows.append((int(m["number"]), m["name"], paths, m["job"]))
    return rows


def path_layers(doc: str) -> dict[str, int]:
    """path -> layer number, from the doc's `layer | name | where | job` table."""
    return {path: number for number, _, paths, _ in table_rows(doc) for path in paths}


def layer_of(path: Path, layers: dict[str, int]) -> int | None:
    """A module's layer: that of the longest listed path enclosing (or naming) its file."""
    rel = _rel(path)
    best = None
    for listed, number in layers.items():
        hit = rel == listed if not listed.endswith("/") else rel.startswith(listed)
        if hit and (best is None or len(listed) > len(best[0])):
            best = (listed, number)
    return best[1] if best else None


@cache
def documented() -> dict[str, int]:
    """module -> layer, every module on disk that the doc places."""
    layers = path_layers(DOC.read_text(encoding="utf-8"))
    placed = {module_name(p): layer_of(p, layers) for p in source_files()}
    return {m: n for m, n in placed.items() if n is not None}


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


def test_every_module_is_placed_and_every_listed_path_exists() -> None:
    unplaced = sorted(set(modules_on_disk()) - set(documented()))
    listed = path_layers(DOC.read_text(encoding="utf-8"))
    missing = sorted(p for p in listed if not (ROOT / p).exists())
    assert not unplaced and not missing, (
        "docs/ARCHITECTURE.md's layer table and the code disagree:\n"
        f"  modules in no listed path ({len(unplaced)}): {', '.join(unplaced) or '-'}\n"
        f"  listed paths not on disk ({len(missing)}): {', '.join(missing) or '-'}"
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


def _reads_meta_config(node: ast.AST) -> bool:
    """`meta["config"]`, `results.meta["config"]` or `meta.get("config")`."""
    if isinstance(node, ast.Subscript):
        key, owner = node.slice, node.value
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
    ):
        key, owner = node.args[0], node.func.value
    else:
        return False
    is_config = isinstance(key, ast.Constant) and key.value == "config"
    return is_config and "meta" in ast.unparse(owner)


def test_only_the_run_folder_reads_the_stored_config_as_a_dict() -> None:
    """Everything else reads the typed meta (harness.rundir.meta: RunMeta.config is a Config);
    harness.migrations's format migrations work on the raw dict by design."""
    allowed = ("harness/rundir/", "harness/migrations.py")
    found = [
        f"{_rel(path)}:{node.lineno}: {ast.unparse(node)}"
        for path in source_files()
        if not _rel(path).startswith(allowed)
        for node in ast.walk(_tree(path))
        if _reads_meta_config(node)
    ]
    assert not found, "read the typed meta instead (RunMeta.config):\n  " + "\n  ".join(found)


# --- the doc itself --------------------------------------------------------------------------


def test_doc_table_is_consistent() -> None:
    rows = table_rows(DOC.read_text(encoding="utf-8"))
    assert len(rows) > 5, "docs/ARCHITECTURE.md: no `layer | name | where | job` table found"
    problems = []
    numbers = [number for number, _, _, _ in rows]
    if numbers != list(range(len(rows))):
        problems.append(f"layers are not numbered 0..{len(rows) - 1} in order: {numbers}")
    seen: dict[str, int] = {}
    for _, _, paths, _ in rows:
        for p in paths:
            seen[p] = seen.get(p, 0) + 1
    problems += [f"{p} is listed {n} times" for p, n in sorted(seen.items()) if n > 1]
    problems += [f"layer {n}: no path given" for n, _, paths, _ in rows if not paths]
    problems += [f"layer {n}: no job given" for n, _, _, job in rows if not job]
    problems += [
        f"{p}: experiments belongs to layer 0, not {n}"
        for n, _, paths, _ in rows
        for p in paths
        if p.startswith("experiments") and n != 0
    ]
    problems += [
        f"{p}: harness sits above layer 0"
        for n, _, paths, _ in rows
        for p in paths
        if p.startswith("harness") and n == 0
    ]
    assert not problems, "docs/ARCHITECTURE.md's layer table:\n  " + "\n  ".join(problems)


# --- the helpers, on small known inputs ------------------------------------------------------


def test_helpers() -> None:
    assert module_name(ROOT / "harness" / "report" / "__init__.py") == "harness.report"
    assert module_name(ROOT / "experiments" / "strategies" / "p1.py") == "experiments.strategies.p1"
    assert _resolve_relative("harness.report", True, 1, "html") == "harness.report.html"
    assert _resolve_relative("harness.report.html", False, 1, None) == "harness.report"
    assert _resolve_relative("harness.report.html", False, 2, "stats") == "harness.stats"
    doc = (
        "| layer | name | where | job |\n|---|---|---|---|\n"
        "| 0 | low | `harness/x.py`, `harness/pkg/` | a |\n| 1 | high | `harness/pkg/sub/` | b |\n"
    )
    layers = path_layers(doc)
    assert layers == {"harness/x.py": 0, "harness/pkg/": 0, "harness/pkg/sub/": 1}
    assert layer_of(ROOT / "harness" / "pkg" / "sub" / "m.py", layers) == 1
    assert layer_of(ROOT / "harness" / "pkg" / "m.py", layers) == 0
    assert layer_of(ROOT / "harness" / "y.py", layers) is None
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
