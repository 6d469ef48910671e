"""The static files pages load: the stylesheet parses (every block closed), and every script a
template names exists."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).parents[1] / "src" / "satchel" / "web" / "static"
TEMPLATES = STATIC.parent / "templates"


def test_every_block_of_the_stylesheet_is_closed() -> None:
    css = re.sub(r"/\*.*?\*/", "", (STATIC / "satchel.css").read_text(), flags=re.S)
    depth = 0
    for number, line in enumerate(css.splitlines(), 1):
        # A rule written at the left margin is a top-level one: no block may be open there.
        if line and not line[0].isspace() and not line.startswith("}"):
            assert depth == 0, f"satchel.css:{number} starts inside a block left open"
        depth += line.count("{") - line.count("}")
        assert depth >= 0, f"satchel.css:{number} closes a block that is not open"
    assert depth == 0
    assert "<<<<<<<" not in css


def test_every_script_a_template_loads_exists() -> None:
    named = set()
    for template in TEMPLATES.glob("*.html"):
        named |= set(re.findall(r'src="/static/(js/[\w.-]+)"', template.read_text()))
    assert named
    missing = [path for path in sorted(named) if not (STATIC / path).is_file()]
    assert missing == []
