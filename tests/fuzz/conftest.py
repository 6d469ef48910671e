"""One app for a whole fuzz module (per database backend): generated requests pile up in it
the way a real server's traffic would. Its files live in memory where the machine has a
tmpfs: thousands of fsyncs would take most of the time, and they are not what is tested."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import core as hypothesis_core
from hypothesis.vendor import pretty
from tests.conftest import BACKENDS, PgDatabases
from tests.fuzz.support import Target, target

MEMORY = Path("/dev/shm")


@pytest.fixture
def readable_failures() -> Iterator[None]:
    """Hypothesis prints the failing example again. Loading schemathesis swaps Hypothesis'
    printer for one that prints nothing (its reports are its own), for every test of the
    run; a property test's report is the example, so it gets the printer back."""
    saved = hypothesis_core.RepresentationPrinter
    hypothesis_core.RepresentationPrinter = pretty.RepresentationPrinter  # type: ignore[misc]
    try:
        yield
    finally:
        hypothesis_core.RepresentationPrinter = saved  # type: ignore[misc]


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not (MEMORY.is_dir() and os.access(MEMORY, os.W_OK)):
        yield tmp_path_factory.mktemp("scratch")
        return
    path = Path(tempfile.mkdtemp(prefix="satchel-fuzz-", dir=MEMORY))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_target(
    request: pytest.FixtureRequest, scratch: Path, sqlite_template: Path
) -> Iterator[Target]:
    tmp = Path(tempfile.mkdtemp(dir=scratch))
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp / "satchel.db")
        url = f"sqlite:///{tmp / 'satchel.db'}"
    else:
        databases: PgDatabases = request.getfixturevalue("pg_databases")
        url = databases.create()
    with target(tmp, url) as made:
        yield made
