"""The HTTP headers every console response carries: a strict Content-Security-Policy and its companions.

The policy allows only the console's own origin (`default-src 'self'`): no
inline script or style, no other host, no framing, no plugins. Images may
also be `data:` URLs (alert snapshots arrive inside the signed alert as
base64 and are shown without being stored apart) and come from the map tile
host when `console.tile_url` is set. Pages and API answers are not cached
(they hold live incident data); static files may be.
"""

from __future__ import annotations

__all__ = ["SecurityHeaders", "content_security_policy", "tile_source"]

import re
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Characters that could end a CSP source expression or the header itself.
_UNSAFE_IN_SOURCE = re.compile(r"[\s;,'\"]")


def tile_source(tile_url: str | None) -> str | None:
    """The CSP source expression of a tile URL template's host, or None when there is none to allow.

    `https://{s}.tile.example/{z}/{x}/{y}.png` gives `https://*.tile.example`
    (Leaflet fills `{s}` with a subdomain); any other placeholder in the host
    leaves only the scheme (`https:`), which still keeps other schemes out.
    """
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or _UNSAFE_IN_SOURCE.search(parts.netloc):
        return None
    host = parts.netloc.rsplit("@", 1)[-1]
    if host.startswith("{s}."):
        host = "*." + host.removeprefix("{s}.")
    if "{" in host or "}" in host:
        return f"{parts.scheme}:"
    return f"{parts.scheme}://{host}"


def content_security_policy(tile_url: str | None) -> str:
    """The console's Content-Security-Policy header value."""
    images = ["'self'", "data:"]
    tiles = tile_source(tile_url)
    if tiles is not None:
        images.append(tiles)
    directives = [
        "default-src 'self'",
        f"img-src {' '.join(images)}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


class SecurityHeaders:
    """ASGI middleware that sets the security headers on every HTTP response (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, policy: str) -> None:
        self.app = app
        self._headers = (
            ("Content-Security-Policy", policy),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self._headers:
                    headers[name] = value
                if not cacheable and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
