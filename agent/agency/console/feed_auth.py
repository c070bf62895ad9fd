"""Who may read the CAP Atom feed and CAP documents: a console session, or a CAD system's HTTP Basic login.

A CAD system polling `/feeds/cap.atom` (and fetching the CAP documents it
links to) has no browser session; it logs in as a console user, usually an
`auditor`, with HTTP Basic credentials on each request (RFC 7617; TLS
protects them beyond loopback, which the receiving config enforces). The
same per-name and per-address failure limit as the login form applies, and
failures are audited; successful polls are not (one a minute would bury the
people's actions). A browser without a session and without credentials is
sent to the login page as for any other page.
"""

from __future__ import annotations

__all__ = ["FeedReader"]

import base64
import binascii
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from agent.agency.console.auth import VIEWERS, ConsoleUser, NotLoggedIn, current_user
from agent.agency.console.context import Console

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="edge-agent console", charset="UTF-8"'}
MAX_CREDENTIALS = 2048


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or len(value) > MAX_CREDENTIALS:
        return None
    try:
        name, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (name, password) if sep else None


def feed_reader(request: Request, console: Console) -> ConsoleUser:
    """The session's user, else the user of valid Basic credentials (401 with a challenge otherwise)."""
    header = request.headers.get("authorization")
    if header is None:
        return _session_user(request, console)
    address = request.client.host if request.client is not None else "unknown"
    credentials = _basic_credentials(header)
    name = credentials[0][:100] if credentials else ""
    keys = (f"user:{name.lower()}", f"addr:{address}")
    wait_s = console.login_limit.retry_after_s(*keys)
    if wait_s is not None:
        raise HTTPException(429, f"too many failed logins: try again in {wait_s} s", {"Retry-After": str(wait_s)})
    user = console.users.check(*credentials) if credentials else None
    if user is None or user.role not in VIEWERS:
        console.login_limit.failed(*keys)
        console.audit.record_event("console_login_failed", user=name, address=address, reason="feed_credentials")
        raise HTTPException(401, "wrong user name or password", _CHALLENGE)
    console.login_limit.succeeded(keys[0])
    return ConsoleUser(user.name, user.role)


def _session_user(request: Request, console: Console) -> ConsoleUser:
    try:
        return current_user(request, console)
    except NotLoggedIn:
        if request.url.path.startswith("/feeds/"):
            raise HTTPException(
                401, "not logged in: use a console session or HTTP Basic credentials", _CHALLENGE
            ) from None
        raise


FeedReader = Annotated[ConsoleUser, Depends(feed_reader)]
