"""Wiring the console: `create_app(config, engine=...)` builds the FastAPI application and everything it uses.

It loads the trust registry and the status key once, opens the console's
audit log, reads (or makes) the session secret, and puts them into one
`ConsoleContext`; then adds the middleware (signed session cookies:
`SameSite=Strict`, `Secure` and the `__Host-` name under TLS; the security
headers outermost, so every response has them), the error handlers, the
static files and the routers. FastAPI's own documentation pages are off
(they load scripts from a CDN); the OpenAPI description is served behind
the login at `/api/openapi.json`.

Leaflet (the map) is not part of the repository: it is found in
`static/vendor/leaflet/` beside this module, else in the repository's
`.cache/node/node_modules/leaflet/dist/` (`make node-deps`), else the map page
lists places without a map.
"""

from __future__ import annotations

__all__ = ["STATIC_DIR", "create_app", "find_leaflet"]

import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from agent.agency.console import admin_pages, api, export_routes, live_queue, login_routes, pages
from agent.agency.console.context import ConsoleContext
from agent.agency.console.error_pages import install_error_handlers
from agent.agency.console.login_limit import LoginLimiter
from agent.agency.console.security_headers import SecurityHeaders, content_security_policy
from agent.agency.console.session_secret import session_secret
from agent.agency.console.status_actions import StatusActions
from agent.agency.console.templating import console_templates
from agent.agency.receiving_config import ReceivingConfig
from agent.agency.status_sender import SendStatus, StatusSigner, broker_publisher
from agent.agency.store import StoreReader, StoreWriter, UserStore
from agent.agency.trust_registry_file import load_registry
from agent.privacy.audit import AuditLog

STATIC_DIR = Path(__file__).with_name("static")
_REPO = Path(__file__).resolve().parents[3]
LEAFLET_DIRS = (STATIC_DIR / "vendor" / "leaflet", _REPO / ".cache" / "node" / "node_modules" / "leaflet" / "dist")


def find_leaflet(candidates: tuple[Path, ...] = LEAFLET_DIRS) -> Path | None:
    """The first folder holding Leaflet's `leaflet.js` and `leaflet.css`, or None."""
    return next((d for d in candidates if (d / "leaflet.js").is_file() and (d / "leaflet.css").is_file()), None)


def create_app(
    config: ReceivingConfig,
    *,
    engine: Engine,
    send_status: SendStatus | None = None,
    clock: Callable[[], float] = time.time,
    live_poll_s: float = 0.5,
    leaflet_dir: Path | None = None,
) -> FastAPI:
    """The console application over the receiving store behind `engine`.

    Args:
        config: the receiving config (its `console` section, registry, status key, recipient).
        engine: the receiving store (`agent.agency.store.open_database`).
        send_status: publishes a signed status to its site, raising `AgentError` when it could not;
            default: sign with `config.status_key` and publish once through the broker.
        clock: seconds since the epoch.
        live_poll_s: how often the live queue looks for changes.
        leaflet_dir: where to look for Leaflet's files; default the places `find_leaflet` looks.

    Raises:
        AgentError: the registry, the status key or the session secret cannot be read
            (a `ConfigError` for the registry).
    """
    registry = load_registry(config.registry)
    signer = (
        StatusSigner.from_file(config.status_key, config.recipient, config.status_kid) if config.status_key else None
    )
    if signer is not None and send_status is None:
        send_status = broker_publisher(config, registry, signer)
    section = config.console
    audit = AuditLog(section.audit_log)
    console = ConsoleContext(
        config=config,
        reader=StoreReader(engine),
        users=UserStore(engine),
        registry=registry,
        audit=audit,
        templates=console_templates(),
        statuses=StatusActions(signer=signer, send=send_status, writer=StoreWriter(engine), audit=audit, clock=clock),
        login_limit=LoginLimiter(section.login.max_failures, section.login.window_s, clock),
        clock=clock,
        live_poll_s=live_poll_s,
        leaflet_dir=find_leaflet((leaflet_dir,) if leaflet_dir is not None else LEAFLET_DIRS),
    )
    app = FastAPI(
        title=f"{config.recipient} console API",
        version="1",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.console = console
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(section.session_secret_file),
        # `__Host-`: the browser takes the cookie only over HTTPS, for this host and path / (no subdomain sets it).
        session_cookie="__Host-console-session" if section.tls else "console-session",
        max_age=section.session_max_age_s,
        same_site="strict",
        https_only=section.tls,
    )
    app.add_middleware(SecurityHeaders, policy=content_security_policy(section.tile_url))
    install_error_handlers(app)
    if console.leaflet_dir is not None:
        # Before /static, which would otherwise take these paths and not find them.
        app.mount("/static/vendor/leaflet", StaticFiles(directory=console.leaflet_dir), name="leaflet")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (login_routes, pages, admin_pages, export_routes, live_queue, api):
        app.include_router(module.router)
    return app
