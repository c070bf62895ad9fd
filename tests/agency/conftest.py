"""Fixtures of the receiving side's tests: two sites, a registry naming both, a store on each backend, a real
Mosquitto."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.agency.trust_registry import TrustRegistry
from agent.agency.trust_registry_file import load_registry
from tests.agency.v2_alerts import Site, write_registry
from tests.brokers import MosquittoBroker


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty receiving store: a new SQLite file, or a database on the session's PostgreSQL (tests/pg.py)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path}/store/receiving.sqlite"


@pytest.fixture(scope="module")
def north() -> Site:
    return Site("depot-north")


@pytest.fixture(scope="module")
def south() -> Site:
    return Site("depot-south")


@pytest.fixture()
def registry_file(tmp_path: Path, north: Site, south: Site) -> Path:
    return write_registry(tmp_path / "registry.yaml", [north, south])


@pytest.fixture()
def registry(registry_file: Path) -> TrustRegistry:
    return load_registry(registry_file)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """One anonymous Mosquitto per test module; tests use their own client ids and sites' topics."""
    with MosquittoBroker(tmp_path_factory.mktemp("agency-broker")) as b:
        yield b


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture()
def agency_log() -> Iterator[list[str]]:
    """The log lines of `agent.agency` (attached directly: the CLI's logging setup stops propagation)."""
    handler = _Records()
    logger = logging.getLogger("agent.agency")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(old_level)
