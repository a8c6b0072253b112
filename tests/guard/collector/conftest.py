"""Fixtures: the database backends (SQLite file, real PostgreSQL) and a collector process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import CollectorProcess, create_database, run_collector, start_postgres


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with start_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'collector.db'}"
    server: str = request.getfixturevalue("pg_server")
    return create_database(server, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def collector(db_url: str) -> Iterator[CollectorProcess]:
    with run_collector(db_url) as proc:
        yield proc
