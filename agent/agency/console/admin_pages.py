"""The supervisor's pages: console users (add, disable, enable) and the trust registry (read-only).

The auditor may read both pages and change nothing; other roles get 403.
Every change is in the console's audit log (`console_user_added`,
`console_user_disabled`, `console_user_enabled`) before the page reports it.
A supervisor cannot disable their own account, so the console always keeps
someone who can manage it. The registry page shows the file as the console
loaded it at start: every site, its topic prefix and each key's window and
state now (in force, not yet, expired, revoked).
"""

from __future__ import annotations

__all__ = ["router"]

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from agent.agency.console.auth import AdminReader, Manager
from agent.agency.console.context import Console
from agent.agency.console.site_overview import key_windows
from agent.agency.console.templating import flash
from agent.agency.store import ROLES
from agent.agency.store.users import MIN_PASSWORD
from agent.errors import AgentError

router = APIRouter(include_in_schema=False)


@router.get("/users")
def users_page(request: Request, console: Console, user: AdminReader) -> Response:
    return console.templates.TemplateResponse(
        request,
        "users.html",
        {
            "users": console.users.all(),
            "roles": ROLES,
            "min_password": MIN_PASSWORD,
            "can_manage": user.role == "supervisor",
        },
    )


@router.post("/users")
def add_user(
    request: Request,
    console: Console,
    user: Manager,
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    try:
        added = console.users.add(name.strip(), role, password)
    except AgentError as err:
        flash(request, "error", f"User not added: {err}")
    else:
        console.audit.record_event("console_user_added", user=user.name, name=added.name, role=added.role)
        flash(request, "ok", f"User {added.name} added as {added.role}.")
    return RedirectResponse("/users", 303)


def _set_disabled(request: Request, console: Console, by: str, name: str, disabled: bool) -> Response:
    if disabled and name == by:
        flash(request, "error", "You cannot disable your own account.")
        return RedirectResponse("/users", 303)
    if not console.users.set_disabled(name, disabled):
        raise HTTPException(404, f"no user {name}")
    kind = "console_user_disabled" if disabled else "console_user_enabled"
    console.audit.record_event(kind, user=by, name=name)
    flash(request, "ok", f"User {name} {'disabled' if disabled else 'enabled'}.")
    return RedirectResponse("/users", 303)


@router.post("/users/{name}/disable")
def disable_user(request: Request, console: Console, user: Manager, name: str) -> Response:
    return _set_disabled(request, console, user.name, name, True)


@router.post("/users/{name}/enable")
def enable_user(request: Request, console: Console, user: Manager, name: str) -> Response:
    return _set_disabled(request, console, user.name, name, False)


@router.get("/registry")
def registry_page(request: Request, console: Console, user: AdminReader) -> Response:
    now = datetime.fromtimestamp(console.clock(), UTC)
    sites = [(site, key_windows(site, now)) for _, site in sorted(console.registry.sites.items())]
    return console.templates.TemplateResponse(
        request, "registry.html", {"sites": sites, "source": console.registry.source}
    )
