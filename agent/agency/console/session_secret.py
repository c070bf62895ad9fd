"""The key that signs console session cookies: read from its file, or made once when the file is missing.

The file holds at least 32 random bytes. It is created with mode 0600 by the
first console start, so sessions survive a restart and two console processes
sharing the file accept each other's cookies. Deleting the file logs everyone
out at the next start.
"""

from __future__ import annotations

__all__ = ["SECRET_BYTES", "session_secret"]

import logging
import os
import secrets
import stat
from pathlib import Path

from agent.errors import AgentError
from agent.logs import log_event

SECRET_BYTES = 32
_log = logging.getLogger("agent.agency.console")


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another console process made it first: use theirs
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(SECRET_BYTES))
        f.flush()
        os.fsync(f.fileno())
    log_event(_log, "console_session_secret_created", path=path)


def session_secret(path: Path) -> str:
    """The session signing key kept in `path` (created when missing), as text for itsdangerous.

    Raises:
        AgentError: the file cannot be read or made, or holds fewer than 32 bytes.
    """
    try:
        if not path.exists():
            _create(path)
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as err:
        raise AgentError(f"console session secret {path}: {err.strerror or err}") from None
    if len(data) < SECRET_BYTES:
        raise AgentError(f"console session secret {path} holds {len(data)} bytes; at least {SECRET_BYTES} are needed")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log_event(_log, "console_session_secret_readable", logging.WARNING, path=path, mode=oct(mode & 0o777))
    return data.hex()
