"""Who is logged in, what their role lets them do, and the CSRF check on every state change.

A session (Starlette's signed cookie) holds the user name, the login time
and a CSRF token, nothing else; the role and the disabled flag are read from
the user store on every request, so disabling a user or changing a role
takes effect at their next click. A session older than
`console.session_max_age_s` is over, however often the cookie was re-signed.

Roles: `analyst` and `operator` view and send the statuses their role allows
(`agent.agency.console.status_actions`), `supervisor` views and manages users,
`auditor` views everything and changes nothing. Not logged in: pages redirect
to `/login`, the JSON API and the event stream answer 401 (`NotLoggedIn`,
turned into a response by `agent.agency.console.error_pages`). A wrong role is 403.

Every POST carries the session's CSRF token (form field `csrf_token` or
header `X-CSRF-Token`), compared in constant time; the login form gets one
before there is a user.
"""

# No `from __future__ import annotations` here: FastAPI evaluates the dependencies' annotations at run
# time from the module's globals, and the functions `require` and `poster` return annotate their
# parameters with their own local variables, which only eager annotations can see.

__all__ = [
    "ADMIN_READERS",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "MANAGERS",
    "SENDERS",
    "VIEWERS",
    "AdminReader",
    "AnyPoster",
    "ConsoleUser",
    "Manager",
    "NotLoggedIn",
    "Sender",
    "Viewer",
    "check_csrf",
    "csrf_token",
    "current_user",
    "end_session",
    "poster",
    "require",
    "session_user_name",
    "start_session",
]

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from agent.agency.console.context import Console
from agent.agency.store import ROLES

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_USER, _LOGIN_AT, _CSRF = "user", "login_at", "csrf"

VIEWERS = ROLES
SENDERS = ("analyst", "operator")
MANAGERS = ("supervisor",)
# Who may read the users and trust-registry pages (the auditor reads, only the supervisor changes).
ADMIN_READERS = ("supervisor", "auditor")


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """The logged-in user, as the user store has them now."""

    name: str
    role: str


class NotLoggedIn(Exception):
    """The request has no valid session (redirect to the login page, or 401)."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made when the session has none (the login form's pre-session token)."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


def start_session(request: Request, name: str, now: float) -> None:
    """Log `name` in: a fresh session with a new CSRF token (nothing from before the login survives)."""
    request.session.clear()
    request.session.update({_USER: name, _LOGIN_AT: now, _CSRF: secrets.token_urlsafe(32)})


def end_session(request: Request) -> None:
    request.session.clear()


def session_user_name(request: Request) -> str | None:
    name = request.session.get(_USER)
    return name if isinstance(name, str) else None


def current_user(request: Request, console: Console) -> ConsoleUser:
    """The session's user as the store has them now.

    Raises:
        NotLoggedIn: no session, an expired one, or a user since disabled or removed.
    """
    name = session_user_name(request)
    login_at = request.session.get(_LOGIN_AT)
    if name is None or not isinstance(login_at, int | float):
        raise NotLoggedIn
    if console.clock() - login_at > console.config.console.session_max_age_s:
        end_session(request)
        raise NotLoggedIn
    row = console.users.get(name)
    if row is None or row.disabled:
        end_session(request)
        raise NotLoggedIn
    user = ConsoleUser(row.name, row.role)
    request.state.user = user
    return user


def require(*roles: str) -> Callable[..., ConsoleUser]:
    """A dependency: the logged-in user, when their role is one of `roles` (else 403)."""

    def dependency(user: Annotated[ConsoleUser, Depends(current_user)]) -> ConsoleUser:
        if user.role not in roles:
            raise HTTPException(403, f"the {user.role} role may not do this")
        return user

    return dependency


async def check_csrf(request: Request) -> None:
    """Refuse (403) a request without the session's CSRF token in its header or form.

    Raises:
        HTTPException: 403 when the token is missing or wrong.
    """
    expected = request.session.get(_CSRF)
    given: object = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        # Starlette keeps the parsed form, so the route's own form fields read the same one.
        given = (await request.form()).get(CSRF_FIELD)
    if (
        not isinstance(expected, str)
        or not isinstance(given, str)
        or not hmac.compare_digest(expected.encode(), given.encode())
    ):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def poster(*roles: str) -> Callable[..., Awaitable[ConsoleUser]]:
    """A dependency for a POST: the user as `require(*roles)` gives them, then the CSRF check."""

    async def dependency(request: Request, user: Annotated[ConsoleUser, Depends(require(*roles))]) -> ConsoleUser:
        await check_csrf(request)
        return user

    return dependency


# Route parameters: the user when their role fits (GET), and also with the CSRF token checked (POST).
Viewer = Annotated[ConsoleUser, Depends(require(*VIEWERS))]
AdminReader = Annotated[ConsoleUser, Depends(require(*ADMIN_READERS))]
Sender = Annotated[ConsoleUser, Depends(poster(*SENDERS))]
Manager = Annotated[ConsoleUser, Depends(poster(*MANAGERS))]
AnyPoster = Annotated[ConsoleUser, Depends(poster(*VIEWERS))]
