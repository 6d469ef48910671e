"""The shape the code keeps: small functions; browser tests that poll the way the CSP allows."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).parents[1] / "src" / "satchel"
BROWSER_TESTS = Path(__file__).parent / "browser"
MAX_LINES = 60


def test_no_function_is_longer_than_sixty_lines() -> None:
    long = []
    for path in SOURCE.rglob("*.py"):
        if "migrations" in path.parts:
            continue  # generated schema steps, written once
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(SOURCE)}:{node.lineno} {node.name} ({lines})")
    assert long == []


def test_browser_tests_poll_functions_not_expressions() -> None:
    """Playwright's wait_for_function evals an expression's text at every poll, and the pages'
    CSP (no 'unsafe-eval') refuses that eval once the first check has failed: such a wait passes
    when the condition is already true and fails when it is not yet. A function is evaled once."""
    expressions = []
    for path in BROWSER_TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "wait_for_function"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and not str(node.args[0].value).lstrip().startswith(("()", "(", "function"))
            ):
                expressions.append(f"{path.name}:{node.lineno}")
    assert expressions == []
