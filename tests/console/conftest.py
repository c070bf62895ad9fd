"""Fixtures of the console's request-level tests: a console over a real store, with cheap password hashing.

The modules whose tests read and write the store through the pages (`ON_BOTH_STORES`) run each test on
SQLite and on PostgreSQL (the session's throwaway server, tests/pg.py); the rest, about logins, roles and
forms, run on SQLite only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from agent.agency.store import users as users_module
from tests.console.harness import ConsoleHarness


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Argon2id's default profile costs ~0.2 s a hash on the test machine; the console's logic is the same.
    monkeypatch.setattr(
        users_module, "PasswordHasher", lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


ON_BOTH_STORES = frozenset({"test_api", "test_exports", "test_live", "test_pages", "test_status", "test_xss"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_backend" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in ON_BOTH_STORES:
        metafunc.parametrize("store_backend", ["sqlite", "postgresql"])


@pytest.fixture()
def store_backend() -> str:
    return "sqlite"


@pytest.fixture()
def store_url(store_backend: str, request: pytest.FixtureRequest) -> str:
    if store_backend == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return "sqlite:///r.sqlite"


@pytest.fixture()
def harness(tmp_path: Path, store_url: str) -> ConsoleHarness:
    return ConsoleHarness(tmp_path, database=store_url)
