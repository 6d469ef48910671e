"""The shape the code keeps: small functions."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).parents[1] / "src" / "satchel"
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
