"""Why the receiving side turns a message away, and the count of each reason.

Every message from the broker is untrusted input; each check that refuses it
raises `Rejected` with one of the `REASONS` below (a stable, short name for
logs, counters and tests) and a sentence for a person. `RejectionCounts`
counts them per reason, safely across the network and caller threads.
"""

from __future__ import annotations

__all__ = ["REASONS", "Rejected", "RejectionCounts", "log_rejection"]

import logging
import threading
from collections import Counter
from typing import Final

from agent.errors import AgentError
from agent.logs import log_event

# reason -> what it means, for the help text and the README.
REASONS: Final[dict[str, str]] = {
    "too_large": "the message is over the size limit",
    "too_deep": "its JSON nests deeper than the limit",
    "not_json": "not UTF-8 JSON",
    "malformed": "not a flattened JWS of this profile",
    "bad_header": "the JWS header is not exactly alg Ed25519, kid and typ",
    "wrong_type": "the JWS typ is not an alert (edge-alert+json)",
    "schema_v1": "schema v1 is no longer accepted",
    "bad_schema": "the signed payload does not match the v2 alert schema",
    "unknown_key": "no registered site has the key id",
    "key_revoked": "the site has revoked the key",
    "key_not_yet_valid": "the key's not_before is in the future",
    "key_expired": "the key's not_after has passed",
    "bad_signature": "the signature does not verify with the registered key",
    "forged": "signed by one site's key for another site, or under another site's topics",
    "wrong_topic": "the topic is not under the signing site's prefix and id",
    "not_for_me": "the alert names another recipient",
    "expired": "the alert's expires has passed",
    "stale": "the alert's sent is older than the freshness window",
    "from_future": "the alert's sent is more than the allowed clock skew ahead",
    "duplicate": "an alert with this site and identifier was accepted before",
    "not_renderable": "the output asked for (CAP) cannot carry this view of the alert",
    "internal_error": "the receiver failed on this message (a bug; logged with its traceback)",
}


class Rejected(AgentError):
    """A message the receiver does not accept.

    Attributes:
        reason: one of `REASONS`.
        site_id: the site the message was tied to, once known (the key's owner).
        kid: the key id its header names, once read.
    """

    def __init__(self, reason: str, detail: str, *, site_id: str | None = None, kid: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        self.reason = reason
        self.detail = detail
        self.site_id = site_id
        self.kid = kid
        super().__init__(f"{reason}: {detail}")


class RejectionCounts:
    """Thread-safe counts of rejected messages by reason (duplicates included, as `duplicate`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] += 1

    def get(self, reason: str) -> int:
        with self._lock:
            return self._counts[reason]

    def snapshot(self) -> dict[str, int]:
        """Reason -> count, for every reason seen at least once."""
        with self._lock:
            return dict(self._counts)

    def total(self, *, duplicates: bool = False) -> int:
        """All rejections; duplicates only when asked (they are not an attack, just at-least-once)."""
        with self._lock:
            return sum(n for reason, n in self._counts.items() if duplicates or reason != "duplicate")


def log_rejection(logger: logging.Logger, topic: str, why: Rejected) -> None:
    """One log line per refused message: a forgery at error level, a duplicate not at all (only counted)."""
    if why.reason == "forged":
        log_event(logger, "alert_forged", logging.ERROR, topic=topic, site=why.site_id, kid=why.kid, detail=why.detail)
    elif why.reason != "duplicate":
        log_event(
            logger,
            "alert_rejected",
            logging.WARNING,
            reason=why.reason,
            topic=topic,
            site=why.site_id or "-",
            kid=why.kid or "-",
            detail=why.detail,
        )
