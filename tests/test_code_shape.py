"""The shape the code keeps: short functions, and a library that never depends on its CLI."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "rrn"
MAX_LINES = 60  # per function, docstring excluded


def function_lengths():
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                        and isinstance(body[0].value.value, str):
                    body = body[1:]
                lines = (body[-1].end_lineno - body[0].lineno + 1) if body else 0
                yield f"{path.relative_to(SRC)}:{node.lineno} {node.name}", lines


def test_no_function_is_longer_than_60_lines():
    long = {name: n for name, n in function_lengths() if n > MAX_LINES}
    assert not long, f"functions over {MAX_LINES} lines (docstring excluded): {long}"


def test_the_library_never_imports_the_cli():
    allowed = {SRC / "cli.py", SRC / "__main__.py"}
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path in allowed or (SRC / "commands") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(SRC)}: {n}" for n in names
                          if n == "rrn.cli" or n.startswith(("rrn.cli.", "rrn.commands"))]
    assert not offenders, offenders


def test_the_checker_sees_long_functions(tmp_path):
    """The length rule is measured, not assumed: a 61-line body is caught."""
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    tree = ast.parse(f'def f():\n    """doc"""\n{body}\n')
    fn = tree.body[0]
    assert fn.body[-1].end_lineno - fn.body[1].lineno + 1 == 61
