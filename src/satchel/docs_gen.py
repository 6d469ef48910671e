"""``python -m satchel.docs_gen``: rewrites the generated parts of the docs (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

from satchel.config import settings_markdown

TABLE_START = "| Setting | Environment | Default | Meaning |"


def regenerate_settings(path: Path) -> bool:
    """Replaces the settings table of ``path``; True when the file changed."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    start = next(n for n, line in enumerate(lines) if line.startswith(TABLE_START))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    fresh = "".join(lines[:start]) + settings_markdown() + "".join(lines[end:])
    if fresh == text:
        return False
    path.write_text(fresh)
    return True


def main() -> int:
    docs = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    changed = regenerate_settings(docs / "settings.md")
    print("docs/settings.md " + ("regenerated" if changed else "is up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
