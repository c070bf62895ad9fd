"""MQTT topic layout of the agent, and the builders that enforce it.

Every topic a site publishes starts with `<prefix>/<site>`, so one ACL line
(`pattern write <prefix>/%u/#` or `topic write <prefix>/<site>/#`) confines a
site to its own subtree:

- `<prefix>/<site>/<camera>/alerts/<rule>[/<recipient>]`: signed alerts,
  QoS 1, never retained. The optional last level names the recipient when
  the policy layer sends different views of one alert to different agencies,
  so an agency's ACL can grant `.../alerts/+/<agency>` and nothing else.
- `<prefix>/<site>/status`: retained `online`, `stopped` (clean exit) or
  `offline` (the broker's last will after the connection died).
- `<prefix>/<site>/stats`: periodic counters, not retained.
- `<prefix>/<site>/feedback/<recipient>`: signed statuses a recipient sends
  back about the site's alerts (`agent.alerts.status`), QoS 1; an ACL lets
  each recipient write only its own level and each site read only its own.
- `<prefix>/<site>/requests/<recipient>`: signed break-glass requests a
  recipient sends (`agent.alerts.request`), QoS 1, with the same ACL shape
  as feedback.
- `<prefix>/<site>/notifications`: signed notices to the site's owner
  (break-glass requests and what became of them), QoS 1, not retained.

Each level must be non-empty and free of `/`, `+`, `#` and NUL; a level
that breaks this raises `ConfigError` rather than publishing somewhere an
ACL does not expect.
"""

from __future__ import annotations

__all__ = [
    "alert_filter",
    "alert_topic",
    "build_topic",
    "feedback_filter",
    "feedback_topic",
    "notifications_topic",
    "requests_filter",
    "requests_topic",
    "stats_topic",
    "status_topic",
    "validate_level",
]

from agent.errors import ConfigError, ConfigIssue

_FORBIDDEN = ("/", "+", "#", "\x00")


def validate_level(level: str, what: str = "topic level") -> str:
    """Return `level` unchanged when it is a valid single topic level.

    Raises:
        ConfigError: empty, or holds `/`, `+`, `#` or NUL.
    """
    if not level or any(ch in level for ch in _FORBIDDEN):
        raise ConfigError([ConfigIssue("<topic>", None, what, f"{level!r} is not a valid MQTT topic level")])
    return level


def build_topic(prefix: str, *levels: str) -> str:
    """Join a prefix (which may hold several levels) and single levels into a topic.

    Raises:
        ConfigError: a level is invalid.
    """
    prefix_levels = prefix.split("/")
    for part in prefix_levels:
        validate_level(part, "topic prefix")
    for level in levels:
        validate_level(level)
    return "/".join([*prefix_levels, *levels])


def alert_topic(prefix: str, site: str, camera: str, rule: str, recipient: str | None = None) -> str:
    """`<prefix>/<site>/<camera>/alerts/<rule>[/<recipient>]`."""
    levels = [site, camera, "alerts", rule]
    if recipient is not None:
        levels.append(recipient)
    return build_topic(prefix, *levels)


def alert_filter(prefix: str, site: str = "+") -> str:
    """Subscription filter matching every alert of a site (or of every site with `+`)."""
    prefix_topic = build_topic(prefix)
    site_level = site if site == "+" else validate_level(site, "site")
    return f"{prefix_topic}/{site_level}/+/alerts/#"


def status_topic(prefix: str, site: str) -> str:
    """`<prefix>/<site>/status` (retained)."""
    return build_topic(prefix, site, "status")


def stats_topic(prefix: str, site: str) -> str:
    """`<prefix>/<site>/stats`."""
    return build_topic(prefix, site, "stats")


def feedback_topic(prefix: str, site: str, recipient: str) -> str:
    """`<prefix>/<site>/feedback/<recipient>`: where `recipient` sends its statuses for `site`."""
    return build_topic(prefix, site, "feedback", recipient)


def feedback_filter(prefix: str, site: str) -> str:
    """Subscription filter matching every recipient's statuses for one site."""
    return f"{build_topic(prefix, site, 'feedback')}/+"


def requests_topic(prefix: str, site: str, recipient: str) -> str:
    """`<prefix>/<site>/requests/<recipient>`: where `recipient` sends its break-glass requests for `site`."""
    return build_topic(prefix, site, "requests", recipient)


def requests_filter(prefix: str, site: str) -> str:
    """Subscription filter matching every recipient's break-glass requests for one site."""
    return f"{build_topic(prefix, site, 'requests')}/+"


def notifications_topic(prefix: str, site: str) -> str:
    """`<prefix>/<site>/notifications`: the site's signed notices to its owner."""
    return build_topic(prefix, site, "notifications")
