"""The shape the code keeps, checked over src/rrn, each rule shown to catch a planted violation:
short functions, few positional parameters, a library that never imports its CLI, never
prints, never imports training from below it, modules without import cycles, and layers as
README.md's package table lists them: every module in a row, importing only from its own row
and the rows before it."""

import ast
import re
import shutil
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rrn"
README = SRC.parents[1] / "README.md"
MAX_LINES = 60  # per function, docstring excluded
MAX_POSITIONAL = 6  # per function, self/cls excluded; keyword-only parameters do not count;
# and per call: a call passing more is a bundle to build by keyword (``kw_only=True``)
APP = ("cli.py", "commands")  # the command line: it may print and import everything
ABOVE_TRAINING = ("train", "commands", "cli", "demo", "experiment")  # may import rrn.train


# ---------------------------------------------------------------------------- the checker
def modules(root: Path):
    """(path, dotted module name, syntax tree) of every module under package folder ``root``."""
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, ".".join(parts), ast.parse(path.read_text())


def _functions(tree):
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def long_functions(root: Path, limit: int = MAX_LINES) -> dict[str, int]:
    out = {}
    for path, _, tree in modules(root):
        for fn in _functions(tree):
            body = fn.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                body = body[1:]
            lines = (body[-1].end_lineno - body[0].lineno + 1) if body else 0
            if lines > limit:
                out[f"{path.relative_to(root)}:{fn.lineno} {fn.name}"] = lines
    return out


def many_positional(root: Path, limit: int = MAX_POSITIONAL) -> dict[str, int]:
    out = {}
    for path, _, tree in modules(root):
        for fn in _functions(tree):
            names = [
                a.arg for a in fn.args.posonlyargs + fn.args.args if a.arg not in ("self", "cls")
            ]
            if len(names) > limit:
                out[f"{path.relative_to(root)}:{fn.lineno} {fn.name}"] = len(names)
    return out


def many_positional_arguments(root: Path, limit: int = MAX_POSITIONAL) -> dict[str, int]:
    """``path:line callee`` -> positional arguments of each call passing more than ``limit``
    (a ``*args`` counts as one)."""
    out = {}
    for path, _, tree in modules(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and len(node.args) > limit:
                where = f"{path.relative_to(root)}:{node.lineno} {ast.unparse(node.func)}"
                out[where] = len(node.args)
    return out


def _is_app(root: Path, path: Path) -> bool:
    rel = path.relative_to(root).parts
    return rel[0] in APP or path.name == "__main__.py"


def prints_in_library(root: Path) -> list[str]:
    out = []
    for path, _, tree in modules(root):
        if _is_app(root, path):
            continue
        out += [
            f"{path.relative_to(root)}:{n.lineno}"
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
        ]
    return out


def _type_checking_only(tree) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(m) for n in node.body for m in ast.walk(n)}
    return skip


def imports(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at module level or inside functions (not
    under ``if TYPE_CHECKING:``). ``from a.b import c`` imports module ``a.b.c`` when that is a
    module, else ``a.b``."""
    package = root.name
    names = {name for _, name, _ in modules(root)}
    graph = {}
    for path, me, tree in modules(root):
        skip, out = _type_checking_only(tree), set()
        here = me if path.name == "__init__.py" else me.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names if a.name.split(".")[0] == package}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                if base.split(".")[0] == package:
                    out |= {
                        f"{base}.{a.name}" if f"{base}.{a.name}" in names else base
                        for a in node.names
                    }
        graph[me] = {m for m in out if m != me and m in names}
    return graph


def import_cycles(root: Path) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    graph = imports(root)
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(cycles)


def imports_of(root: Path, target: str, allowed: tuple[str, ...]) -> list[str]:
    """``module -> target...`` for modules outside ``allowed`` (sub-packages or modules of the
    package) that import ``target`` or a module under it."""
    package = root.name
    out = []
    for me, deps in imports(root).items():
        top = me.split(".")[1] if "." in me else ""
        if top in allowed:
            continue
        out += [
            f"{me} -> {d}"
            for d in sorted(deps)
            if d == f"{package}.{target}" or d.startswith(f"{package}.{target}.")
        ]
    return out


def cli_imports(root: Path) -> list[str]:
    """Library modules that import the command line (``cli`` or ``commands``)."""
    package, graph = root.name, imports(root)
    out = []
    for path, me, _ in modules(root):
        if _is_app(root, path):
            continue
        out += [
            f"{me} -> {d}"
            for d in sorted(graph[me])
            if d == f"{package}.cli" or d.startswith(f"{package}.commands")
        ]
    return out


def layer_table(readme: str) -> list[tuple[str, tuple[str, ...]]]:
    """(layer, its modules) of each row of the ``| layer | modules | owns |`` table under the
    README's ``## The package``, bottom layer first; the modules are the cell's backquoted names."""
    section = readme.split("\n## The package", 1)[1].split("\n## ", 1)[0]
    lines = section[section.index("| layer | modules |") :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        layer, names = [cell.strip() for cell in line.strip().strip("|").split("|")][:2]
        rows.append((layer, tuple(re.findall(r"`([\w.]+)`", names))))
    return rows


def layer_of(module: str, table, package: str) -> int | None:
    """The row of ``module``: the row naming it, or naming the package it is in (the longest such
    name); the root ``package`` names its own ``__init__`` only. ``None``: in no row."""
    best, row = "", None
    for i, (_, names) in enumerate(table):
        for name in names:
            covers = module == name or (name != package and module.startswith(f"{name}."))
            if covers and len(name) > len(best):
                best, row = name, i
    return row


def upward_imports(root: Path, table) -> list[str]:
    """``module (layer) -> module (layer)`` for each import of a later row of ``table``."""
    out = []
    for me, deps in sorted(imports(root).items()):
        mine = layer_of(me, table, root.name)
        for dep in sorted(deps):
            theirs = layer_of(dep, table, root.name)
            if mine is not None and theirs is not None and theirs > mine:
                out.append(f"{me} ({table[mine][0]}) -> {dep} ({table[theirs][0]})")
    return out


def modules_in_no_row(root: Path, table) -> list[str]:
    return [name for _, name, _ in modules(root) if layer_of(name, table, root.name) is None]


def rows_naming_no_module(root: Path, table) -> list[str]:
    """Names in ``table`` that are no module or package under ``root`` (a stale row)."""
    names = {name for _, name, _ in modules(root)}
    return [n for _, row in table for n in row if n not in names]


# ---------------------------------------------------------------------------- rrn keeps them
def test_no_function_is_longer_than_60_lines():
    assert not long_functions(SRC), f"functions over {MAX_LINES} lines (docstring excluded)"


def test_no_function_takes_more_than_6_positional_parameters():
    offenders = many_positional(SRC)
    assert not offenders, f"bundle what travels together, or make it keyword-only: {offenders}"


def test_no_call_passes_more_than_6_positional_arguments():
    offenders = many_positional_arguments(SRC)
    assert not offenders, f"name the arguments, or make the dataclass kw_only=True: {offenders}"


def test_the_library_never_imports_the_cli():
    assert not cli_imports(SRC)


def test_the_library_logs_instead_of_printing():
    assert not prints_in_library(SRC), "use logging.getLogger(__name__); the CLI prints"


def test_no_import_cycles():
    assert not import_cycles(SRC)


def test_nothing_below_training_imports_it():
    assert not imports_of(SRC, "train", ABOVE_TRAINING)


def test_every_module_is_in_a_row_of_the_readme_layer_table():
    table = layer_table(README.read_text())
    assert [layer for layer, _ in table][:1] == ["bottom"], table
    assert not modules_in_no_row(SRC, table), "add it to README.md's table under 'The package'"
    assert not rows_naming_no_module(SRC, table)


def test_the_layers_only_import_downwards():
    offenders = upward_imports(SRC, layer_table(README.read_text()))
    assert not offenders, "move the code down, or fix README.md's table if it is wrong"


# ---------------------------------------------------------------------------- and each rule bites
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_checker_catches_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    root = _package(
        tmp_path,
        {
            "a.py": f'def f():\n    """doc"""\n{body}\n',
            "b.py": "def g():\n" + "\n".join(f"    y{i} = {i}" for i in range(60)),
        },
    )
    assert long_functions(root) == {"a.py:1 f": 61}


def test_the_checker_catches_seven_positional_parameters(tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": "def f(a, b, c, d, e, g, h):\n    pass\n"
            "def ok(a, b, c, d, e, g, *, h):\n    pass\n"
            "class C:\n    def m(self, a, b, c, d, e, g):\n        pass\n"
        },
    )
    assert many_positional(root) == {"a.py:1 f": 7}


def test_the_checker_catches_a_call_with_seven_positional_arguments(tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": "from dataclasses import dataclass\n"
            "@dataclass\nclass Bundle:\n    a: int\n    b: int\n    c: int\n    d: int\n"
            "    e: int\n    f: int\n    g: int\n"
            "x = Bundle(1, 2, 3, 4, 5, 6, 7)\n"
            "y = Bundle(1, 2, 3, 4, 5, 6, g=7)\n"
            "z = max(*[1, 2], 3, 4, 5, 6, 7, 8)\n"
        },
    )
    assert many_positional_arguments(root) == {"a.py:11 Bundle": 7, "a.py:13 max": 7}


def test_the_checker_catches_a_print_in_the_library_only(tmp_path):
    root = _package(
        tmp_path,
        {
            "lib.py": "def f():\n    print('hi')\n",
            "cli.py": "print('the app may')\n",
            "commands/__init__.py": "",
            "commands/run.py": "print('so may its commands')\n",
        },
    )
    assert prints_in_library(root) == ["lib.py:2"]


def test_the_checker_catches_an_import_cycle_through_a_function(tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": "from pkg import b\n",
            "b.py": "def f():\n    from pkg.c import x\n",
            "c.py": "import pkg.a\nx = 1\n",
            "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n",
            "e.py": "from pkg import d\n",
        },
    )
    assert import_cycles(root) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_checker_catches_an_upward_import_of_training_and_of_the_cli(tmp_path):
    root = _package(
        tmp_path,
        {
            "train/__init__.py": "",
            "train/loop.py": "from pkg.evaluation import x\n",
            "evaluation.py": "x = 1\ndef f():\n    from pkg.train.loop import y\n",
            "demo.py": "from pkg.train import loop\n",
            "cli.py": "",
            "commands/__init__.py": "",
            "lib.py": "from pkg import cli\n",
        },
    )
    assert imports_of(root, "train", ABOVE_TRAINING) == ["pkg.evaluation -> pkg.train.loop"]
    assert cli_imports(root) == ["pkg.lib -> pkg.cli"]


TABLE = """# pkg

## The package

| layer | modules | owns |
|---|---|---|
| bottom | `pkg.low`, `pkg.base` | |
| top | `pkg`, `pkg.high`, `pkg.app` | |

## Development
"""


def test_the_checker_catches_an_upward_import_and_a_module_in_no_row(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "def __getattr__(name):\n    from pkg.high import x\n",
            "low.py": "from pkg import base\ndef f():\n    from pkg.high import x\n",
            "base.py": "from pkg import version\n",
            "version.py": "v = 1\n",
            "high.py": "from pkg.low import f\nx = 1\n",
            "app/__init__.py": "",
            "app/cli.py": "import pkg\nfrom pkg.high import x\n",
        },
    )
    table = layer_table(TABLE)
    assert table == [("bottom", ("pkg.low", "pkg.base")), ("top", ("pkg", "pkg.high", "pkg.app"))]
    assert layer_of("pkg.app.cli", table, "pkg") == 1
    assert layer_of("pkg.version", table, "pkg") is None  # the root names its __init__ only
    assert modules_in_no_row(root, table) == ["pkg.version"]
    assert upward_imports(root, table) == ["pkg.low (bottom) -> pkg.high (top)"]
    assert rows_naming_no_module(root, [("top", ("pkg.gone", "pkg.app"))]) == ["pkg.gone"]


def test_the_checker_catches_an_upward_import_planted_in_a_copy_of_rrn(tmp_path):
    copy = tmp_path / "rrn"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    table = layer_table(README.read_text())
    sampling = copy / "data" / "sampling.py"
    sampling.write_text(sampling.read_text() + "\n\ndef f():\n    from rrn.config import x\n")
    (copy / "stray.py").write_text("from rrn.errors import UserError\n")
    assert upward_imports(copy, table) == [
        "rrn.data.sampling (data and model) -> rrn.config (settings)"
    ]
    assert modules_in_no_row(copy, table) == ["rrn.stray"]


@pytest.mark.parametrize(
    "rule",
    [long_functions, many_positional, many_positional_arguments, prints_in_library, import_cycles],
)
def test_an_empty_package_passes_every_rule(tmp_path, rule):
    assert not rule(_package(tmp_path, {}))
