"""Console accounts in the receiving store: name, role and Argon2id password hash.

Roles (what each may do is decided by the console, `agent.agency.console`):
`analyst` (agency: view, acknowledge, dispatch, close), `operator` (control
room: verify or dismiss), `supervisor` (users and the trust registry),
`auditor` (read-only). Passwords are hashed with argon2-cffi's
`PasswordHasher` (Argon2id, its RFC 9106 low-memory profile); a hash made
with older parameters is replaced at the next successful login.
"""

from __future__ import annotations

__all__ = ["ROLES", "UserStore"]

import time
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from agent.agency.store.database import StoreError
from agent.agency.store.rows import UserRow, row_of
from agent.agency.store.tables import users
from agent.errors import AgentError

ROLES: Final = ("analyst", "operator", "supervisor", "auditor")
MIN_PASSWORD = 10
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@")


class UserStore:
    """Add, find and check console users."""

    def __init__(self, engine: Engine, hasher: PasswordHasher | None = None) -> None:
        self.engine = engine
        self._hasher = hasher or PasswordHasher()
        # Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
        self._dummy = self._hasher.hash("not a password of anyone")

    def add(self, name: str, role: str, password: str) -> UserRow:
        """A new user.

        Raises:
            AgentError: a bad name, role or password, or a name already taken.
        """
        if not name or len(name) > 100 or not set(name) <= _NAME_CHARS:
            raise AgentError(f"user name {name!r}: 1 to 100 of letters, digits and _ . - @")
        if role not in ROLES:
            raise AgentError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise AgentError(f"the password must be at least {MIN_PASSWORD} characters")
        row = {
            "name": name,
            "role": role,
            "password_hash": self._hasher.hash(password),
            "created": time.time(),
            "disabled": False,
        }
        try:
            with self.engine.begin() as c:
                c.execute(users.insert().values(row))
        except IntegrityError:
            raise AgentError(f"user {name!r} exists already") from None
        except SQLAlchemyError as err:
            raise StoreError(f"user {name!r} not added: {err}") from None
        return UserRow(**row)  # type: ignore[arg-type]

    def get(self, name: str) -> UserRow | None:
        with self.engine.connect() as c:
            row = c.execute(select(users).where(users.c.name == name)).first()
        return row_of(UserRow, row) if row is not None else None

    def all(self) -> list[UserRow]:
        with self.engine.connect() as c:
            return [row_of(UserRow, r) for r in c.execute(select(users).order_by(users.c.name))]

    def set_disabled(self, name: str, disabled: bool) -> bool:
        """Disable or re-enable a user; False when there is no such user."""
        with self.engine.begin() as c:
            return bool(c.execute(update(users).where(users.c.name == name).values(disabled=disabled)).rowcount)

    def check(self, name: str, password: str) -> UserRow | None:
        """The user when `password` is theirs and the account is enabled, else None."""
        user = self.get(name)
        try:
            self._hasher.verify(user.password_hash if user is not None else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or user.disabled:
            return None
        if self._hasher.check_needs_rehash(user.password_hash):
            with self.engine.begin() as c:
                c.execute(update(users).where(users.c.name == name).values(password_hash=self._hasher.hash(password)))
        return user
