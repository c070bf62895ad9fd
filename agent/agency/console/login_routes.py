"""Logging in and out: the login form, its rate limit, and the audit record of each attempt.

A login needs the form's pre-session CSRF token, a user name and password
that `UserStore.check` accepts (Argon2id; a disabled account never passes),
and fewer than `console.login.max_failures` recent failures for both the
name and the client address (`LoginLimiter`; else 429 with `Retry-After`).
Each attempt is in the console's audit log (`console_login`,
`console_login_failed` with its reason) before the session starts, so a
login the log cannot record does not happen. After a login the user goes
back to where they were sent from (`next`, a path on this console only).
"""

from __future__ import annotations

__all__ = ["router", "safe_next"]

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from agent.agency.console.auth import AnyPoster, check_csrf, end_session, start_session
from agent.agency.console.context import Console

router = APIRouter(include_in_schema=False)
MAX_PASSWORD = 1024


def safe_next(value: str | None) -> str:
    """`value` when it is a path on this console, else `/` (no open redirect to another host)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x20 or c == "\\" for c in value):
        return "/"
    return value


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _login_page(request: Request, console: Console, next_path: str, error: str | None, status_code: int) -> Response:
    return console.templates.TemplateResponse(
        request, "login.html", {"next": next_path, "error": error}, status_code=status_code
    )


@router.get("/login")
def login_form(request: Request, console: Console, next: str = "/") -> Response:
    return _login_page(request, console, safe_next(next), None, 200)


@router.post("/login", dependencies=[Depends(check_csrf)])
def login(
    request: Request,
    console: Console,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    name, address, next_path = username.strip()[:100], _client(request), safe_next(next)
    keys = (f"user:{name.lower()}", f"addr:{address}")
    wait_s = console.login_limit.retry_after_s(*keys)
    if wait_s is not None:
        console.audit.record_event("console_login_failed", user=name, address=address, reason="rate_limited")
        response = _login_page(
            request, console, next_path, f"Too many failed logins: try again in {wait_s} s.", status_code=429
        )
        response.headers["Retry-After"] = str(wait_s)
        return response
    user = console.users.check(name, password) if name and len(password) <= MAX_PASSWORD else None
    if user is None:
        console.login_limit.failed(*keys)
        console.audit.record_event("console_login_failed", user=name, address=address, reason="bad_credentials")
        return _login_page(request, console, next_path, "Wrong user name or password.", status_code=401)
    console.login_limit.succeeded(keys[0])
    console.audit.record_event("console_login", user=user.name, role=user.role, address=address)
    start_session(request, user.name, console.clock())
    return RedirectResponse(next_path, 303)


@router.post("/logout")
def logout(request: Request, console: Console, user: AnyPoster) -> Response:
    console.audit.record_event("console_logout", user=user.name, address=_client(request))
    end_session(request)
    return RedirectResponse("/login", 303)
