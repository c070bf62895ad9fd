"""Fixtures of the console's request-level tests: a console over a real store, with cheap password hashing."""

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


@pytest.fixture()
def harness(tmp_path: Path) -> ConsoleHarness:
    return ConsoleHarness(tmp_path)
