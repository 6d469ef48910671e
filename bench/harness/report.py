"""The targets, the table printed at the end of `make bench`, and figures to 3 significant digits."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

Results = dict[str, dict[str, Any]]  # test name -> figures (or {"error": ...})

RSS_LIMIT_MB = 150.0
P99_LIMIT_MS = 50.0
TUS_MB_S = 300.0
RATIO_TARGETS = (
    ("big_upload", "mb_s", 3.0, "1 GiB upload MB/s"),
    ("big_download", "mb_s", 0.7, "1 GiB download MB/s"),
    ("small_uploads", "per_s", 1.7, "64 KiB uploads/s"),
    ("small_downloads", "req_s", 1.5, "4 KiB downloads req/s"),
)
ZERO_TARGETS = (
    ("small_uploads", "errors", "64 KiB uploads: non-2xx or failed"),
    ("small_downloads", "non_2xx_3xx", "4 KiB downloads: non-2xx/3xx"),
)
TESTS = {
    "big_upload": "1 GiB upload",
    "big_download": "1 GiB download",
    "small_uploads": "64 KiB uploads c=16",
    "small_downloads": "4 KiB downloads c=64",
    "huge_upload": "5 GiB upload",
    "tus_upload": "1 GiB tus upload",
    "tus_resume": "2 GiB tus upload cut 3 times",
}
ROWS = (
    ("big_upload", "mb_s", "MB/s"),
    ("big_upload", "cpu_s", "server CPU s"),
    ("big_upload", "peak_rss_mb", "peak RSS MB"),
    ("big_upload", "peak_pss_mb", "peak PSS MB"),
    ("big_download", "mb_s", "MB/s"),
    ("big_download", "cpu_s", "server CPU s"),
    ("big_download", "peak_rss_mb", "peak RSS MB"),
    ("big_download", "peak_pss_mb", "peak PSS MB"),
    ("small_uploads", "per_s", "uploads/s"),
    ("small_uploads", "p99_ms", "p99 ms"),
    ("small_uploads", "errors", "non-2xx or failed"),
    ("small_uploads", "cpu_s", "server CPU s"),
    ("small_uploads", "peak_rss_mb", "peak RSS MB"),
    ("small_uploads", "peak_pss_mb", "peak PSS MB"),
    ("small_downloads", "req_s", "req/s"),
    ("small_downloads", "p99_ms", "p99 ms"),
    ("small_downloads", "non_2xx_3xx", "non-2xx/3xx"),
    ("small_downloads", "socket_errors", "socket errors"),
    ("small_downloads", "cpu_s", "server CPU s"),
    ("small_downloads", "peak_rss_mb", "peak RSS MB"),
    ("small_downloads", "peak_pss_mb", "peak PSS MB"),
    ("huge_upload", "mb_s", "MB/s"),
    ("huge_upload", "peak_rss_mb", "peak RSS MB"),
    ("huge_upload", "peak_pss_mb", "peak PSS MB"),
    ("tus_upload", "mb_s", "MB/s"),
    ("tus_upload", "cpu_s", "server CPU s"),
    ("tus_upload", "peak_rss_mb", "peak RSS MB"),
    ("tus_upload", "peak_pss_mb", "peak PSS MB"),
    ("tus_resume", "seconds_with_download", "s, with the download"),
    ("tus_resume", "byte_exact", "byte-exact (1 = yes)"),
    ("tus_resume", "peak_rss_mb", "peak RSS MB"),
    ("tus_resume", "peak_pss_mb", "peak PSS MB"),
)


@dataclass
class Target:
    name: str
    description: str
    value: float | None
    limit: float
    passed: bool | None  # None: a figure is missing (test skipped or failed)
    error: str | None = None  # why Satchel's test failed

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "N/A"}[self.passed]


def sig3(value: float) -> str:
    """`value` to 3 significant digits, without an exponent: 1939.05 -> 1940, 0.1234 -> 0.123."""
    if value == 0 or not math.isfinite(value):
        return str(value if value else 0)
    decimals = 2 - math.floor(math.log10(abs(value)))
    rounded = round(value, decimals)
    if rounded and math.floor(math.log10(abs(rounded))) != math.floor(math.log10(abs(value))):
        decimals -= 1  # 999.7 rounds up to 1000: one decimal fewer
    return f"{rounded:.{max(decimals, 0)}f}"


def show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return str(value) if isinstance(value, int) else sig3(value)


def failed(results: Results, test: str) -> bool:
    return "error" in results.get(test, {})


def figure(results: Results, test: str, key: str) -> float | None:
    value = results.get(test, {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def ratio(satchel: Results, copyparty: Results, test: str, key: str) -> float | None:
    mine, theirs = figure(satchel, test, key), figure(copyparty, test, key)
    return mine / theirs if mine is not None and theirs else None


def ratios(mine: Results, theirs: Results) -> dict[str, dict[str, float]]:
    """Every figure of the table that both have, `mine` / `theirs` (counts excepted)."""
    found: dict[str, dict[str, float]] = {}
    for test, key, _ in ROWS:
        value = ratio(mine, theirs, test, key) if key not in _COUNTS else None
        if value is not None:
            found.setdefault(test, {})[key] = round(value, 4)
    return found


def evaluate(satchel: Results, copyparty: Results) -> list[Target]:
    """Every target; one whose Satchel test failed (in any repeat) fails, with the reason."""
    targets = [_ratio_target(satchel, copyparty, *spec) for spec in RATIO_TARGETS]
    text = "Satchel 4 KiB downloads p99 ms <"
    targets.append(_below(satchel, "small_downloads", "p99_ms", text, P99_LIMIT_MS))
    if "tus_upload" in satchel:
        value = figure(satchel, "tus_upload", "mb_s")
        passed = (
            False if failed(satchel, "tus_upload") else None if value is None else value >= TUS_MB_S
        )
        error = satchel.get("tus_upload", {}).get("error")
        text = "Satchel 1 GiB tus upload (50 MiB PATCHes) MB/s >="
        targets.append(Target("tus_upload_mb_s", text, value, TUS_MB_S, passed, error))
    for test, key, text in ZERO_TARGETS:
        value = figure(satchel, test, key)
        passed = False if failed(satchel, test) else None if value is None else value == 0
        error = satchel.get(test, {}).get("error")
        targets.append(Target(f"{test}_{key}", f"Satchel {text} ==", value, 0, passed, error))
    for test, title in TESTS.items():
        if test in satchel:
            # PSS: the process tree's memory with pages shared by the main process and its
            # forked workers counted once (a sum of RSS counts them once per process).
            text = f"Satchel peak memory (PSS) MB, {title} <"
            targets.append(_below(satchel, test, "peak_pss_mb", text, RSS_LIMIT_MB))
    return targets


def _ratio_target(
    satchel: Results, copyparty: Results, test: str, key: str, limit: float, text: str
) -> Target:
    value = ratio(satchel, copyparty, test, key)
    passed = False if failed(satchel, test) else None if value is None else value >= limit
    error = satchel.get(test, {}).get("error")
    text = f"{text} Satchel/copyparty >="
    return Target(f"{test}_{key}_ratio", text, value, limit, passed, error)


def _below(satchel: Results, test: str, key: str, text: str, limit: float) -> Target:
    value = figure(satchel, test, key)
    passed = False if failed(satchel, test) else None if value is None else value < limit
    return Target(f"{test}_{key}", text, value, limit, passed, satchel.get(test, {}).get("error"))


def targets_json(targets: list[Target]) -> list[dict[str, Any]]:
    return [asdict(target) for target in targets]


def print_report(
    satchel: Results,
    copyparty: Results,
    targets: list[Target],
    servers: dict[str, Any],
    scale: Results | None = None,
) -> None:
    """The table; `scale`: the figures of Satchel on S3 + PostgreSQL, beside the default's."""
    console = Console()
    console.print(_table(satchel, copyparty, targets, scale or {}))
    for target in targets:
        style = {"PASS": "green", "FAIL": "bold red", "N/A": "yellow"}[target.verdict]
        value = "-" if target.value is None else show(target.value)
        line = f"{target.verdict:<4}  {target.description} {target.limit:g}: {value}"
        line += f" (Satchel's test failed: {target.error})" if target.error else ""
        console.print(line, style=style, highlight=False)
    for name, info in servers.items():
        if "error" in info:
            console.print(f"WARN  {name}: {info['error']}", style="bold yellow", highlight=False)
    for warning in warnings(satchel, copyparty, scale or {}):
        console.print(f"WARN  {warning}", style="yellow", highlight=False)
    verdicts = [target.verdict for target in targets]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("PASS", "FAIL", "N/A"))
    console.print(f"targets: {counts}", style="bold", highlight=False)


def _table(satchel: Results, copyparty: Results, targets: list[Target], scale: Results) -> Table:
    table = Table(title="Satchel vs copyparty (loopback, same clients, same run)")
    table.add_column("figure")
    columns = ["Satchel", "copyparty", "ratio S/c", "target"]
    columns += ["Satchel S3+PG", "ratio S3PG/S"] if scale else []
    for column in columns:
        table.add_column(column, justify="right")
    by_name = {target.name: target for target in targets}
    for test, title in TESTS.items():
        if test not in satchel and test not in copyparty and test not in scale:
            continue
        table.add_row(f"[bold]{title}[/]")
        for key, label in ((key, label) for row_test, key, label in ROWS if row_test == test):
            mine, theirs = satchel.get(test, {}).get(key), copyparty.get(test, {}).get(key)
            shown_ratio = ratio(satchel, copyparty, test, key) if key not in _COUNTS else None
            target = by_name.get(f"{test}_{key}_ratio") or by_name.get(f"{test}_{key}")
            cells = [show(mine), show(theirs), show(shown_ratio), _target_cell(target)]
            if scale:
                scaled = ratio(scale, satchel, test, key) if key not in _COUNTS else None
                cells += [show(scale.get(test, {}).get(key)), show(scaled)]
            table.add_row(f"  {label}", *cells)
        table.add_section()
    return table


_COUNTS = {"errors", "non_2xx_3xx", "socket_errors", "byte_exact"}  # no ratio of these


def _target_cell(target: Target | None) -> str:
    if target is None:
        return ""
    colour = {"PASS": "green", "FAIL": "bold red", "N/A": "yellow"}[target.verdict]
    sign = target.description.rsplit(" ", 1)[-1]
    return f"[{colour}]{target.verdict}[/] {sign} {target.limit:g}"


def warnings(satchel: Results, copyparty: Results, scale: Results | None = None) -> list[str]:
    found = []
    named = (("Satchel", satchel), ("copyparty", copyparty), ("Satchel S3+PG", scale or {}))
    for name, results in named:
        for test, figures in results.items():
            if "error" in figures:
                found.append(f"{name}, {TESTS.get(test, test)}: {figures['error']}")
        for test, key, text in ZERO_TARGETS:
            value = figure(results, test, key)
            if name == "copyparty" and value:
                found.append(f"copyparty {text} = {value:.0f}: its figure is not comparable")
        sockets = figure(results, "small_downloads", "socket_errors")
        if sockets:
            found.append(f"{name} 4 KiB downloads: {sockets:.0f} socket errors (wrk)")
    return found


def git_commit(root: Path) -> str:
    """The checkout's short commit, read from its .git (no git process: git may not be installed).

    In a worktree `.git` is a file naming the worktree's own folder, which holds HEAD, while
    the branches live in the common folder it names in `commondir`."""
    try:
        git = root / ".git"
        if git.is_file():
            git = (root / git.read_text().strip().removeprefix("gitdir: ")).resolve()
        common = git
        if (git / "commondir").is_file():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head.removeprefix("ref: ")
        for folder in (git, common):
            if (folder / ref).is_file():
                return (folder / ref).read_text().strip()[:7]
        for line in (common / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line[:7]
    except OSError:
        pass
    return "unknown"
