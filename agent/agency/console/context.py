"""What every console route works with, built once by `create_app`: the store, the registry, the audit log.

Routes receive it as the `Console` dependency (it lives on `app.state`), so a
route never builds a store or reads a file itself, and a test builds the
whole console from one config and one engine.
"""

from __future__ import annotations

__all__ = ["Console", "ConsoleContext", "console_of"]

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from starlette.templating import Jinja2Templates

from agent.agency.console.login_limit import LoginLimiter
from agent.agency.console.status_actions import StatusActions
from agent.agency.receiving_config import ReceivingConfig
from agent.agency.store import StoreReader, UserStore
from agent.agency.trust_registry import TrustRegistry
from agent.privacy.audit import AuditLog


@dataclass(frozen=True, slots=True)
class ConsoleContext:
    """The console's shared parts.

    Attributes:
        config: the receiving config the console runs under.
        reader: queries of the receiving store.
        users: console accounts.
        registry: the trust registry as loaded at start.
        audit: the console's own hash-chained audit log.
        templates: the page renderer.
        statuses: sends and records statuses (disabled without a status key).
        login_limit: failed-login bookkeeping.
        clock: seconds since the epoch (injected so tests control time).
        live_poll_s: how often the live queue looks for changes.
        leaflet_dir: where Leaflet's files are, or None when they are not installed.
    """

    config: ReceivingConfig
    reader: StoreReader
    users: UserStore
    registry: TrustRegistry
    audit: AuditLog
    templates: Jinja2Templates
    statuses: StatusActions
    login_limit: LoginLimiter
    clock: Callable[[], float]
    live_poll_s: float
    leaflet_dir: Path | None

    def site_name(self, site_id: str) -> str:
        """A site's name for people: its trust-registry name (set by this recipient), else its id."""
        site = self.registry.sites.get(site_id)
        return site.name if site is not None and site.name else site_id


def console_of(request: Request) -> ConsoleContext:
    console: ConsoleContext = request.app.state.console
    return console


Console = Annotated[ConsoleContext, Depends(console_of)]
