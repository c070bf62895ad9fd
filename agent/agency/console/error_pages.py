"""How refusals and failures reach the user: an error page for people, JSON for programs.

The JSON API (`/api/`), the live event stream (`/events`) and the Atom feed
(`/feeds/`) are read by programs: they get `{"detail": ...}` and a 401 when
not logged in. Everything else is a page: not logged in redirects to
`/login?next=<where they were>`, other errors render `error.html` with the
status code. An `AgentError` that escapes a route (the store or the audit
log cannot be written) is a 503: the console refuses to act when it cannot
record what it did.
"""

from __future__ import annotations

__all__ = ["MACHINE_PREFIXES", "install_error_handlers", "is_machine_path"]

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.templating import Jinja2Templates

from agent.agency.console.auth import NotLoggedIn
from agent.errors import AgentError
from agent.logs import log_event

MACHINE_PREFIXES = ("/api/", "/events", "/feeds/")
_log = logging.getLogger("agent.agency.console")


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PREFIXES)


def error_response(request: Request, status_code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The error as JSON for programs, else as the error page."""
    if is_machine_path(request.url.path):
        return JSONResponse({"detail": message}, status_code, headers=headers)
    templates: Jinja2Templates = request.app.state.console.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status_code": status_code, "message": message},
        status_code=status_code,
        headers=headers,
    )


async def _not_logged_in(request: Request, exc: Exception) -> Response:
    if is_machine_path(request.url.path):
        return JSONResponse({"detail": "not logged in"}, 401, headers={"WWW-Authenticate": 'Session realm="console"'})
    where = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(where, safe='')}", 303)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    message = exc.detail if isinstance(exc.detail, str) else "the request was refused"
    return error_response(request, exc.status_code, message, dict(exc.headers) if exc.headers else None)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):
        raise exc
    if is_machine_path(request.url.path):
        return JSONResponse({"detail": exc.errors()}, 422)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('body', 'query', 'path'))}: {e.get('msg', '')}"
        for e in exc.errors()[:3]
    )
    return error_response(request, 400, f"the request is not valid: {problems}")


async def _agent_error(request: Request, exc: Exception) -> Response:
    log_event(_log, "console_request_failed", logging.ERROR, path=request.url.path, error=str(exc))
    return error_response(request, 503, f"the console could not complete this: {exc}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NotLoggedIn, _not_logged_in)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(AgentError, _agent_error)
