"""The trust registry: which sites a receiver accepts alerts from, under which topics, with which keys.

A key belongs to exactly one site. It verifies that site's alerts only while
it is in force: from `not_before` (if set) until `not_after` (if set), and
not once its key id is on the site's `revoked` list. During a key rotation
the site lists both keys, each with its window. An alert is tied to a site by
the key that signed it, never by what it says: a validly signed alert whose
`site_id` is another site's, or that arrives under another site's topics, is
a forgery (`agent.agency.alert_verifier`).

The file format and its loading, with file, line and field in every error,
are in `agent.agency.trust_registry_file`; `TrustRegistry(sites)` builds one
in code (the demo, tests).
"""

from __future__ import annotations

__all__ = ["RegisteredKey", "RegisteredSite", "TrustRegistry"]

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.agency.rejections import Rejected
from agent.delivery.topics import alert_filter


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """One public key of one site and the window it is in force."""

    kid: str
    site_id: str
    public_key: Ed25519PublicKey
    not_before: datetime | None = None
    not_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class RegisteredSite:
    """A site the receiver trusts: its id, name, topic prefix, keys and revoked key ids."""

    site_id: str
    topic_prefix: str
    keys: tuple[RegisteredKey, ...]
    name: str | None = None
    revoked: frozenset[str] = field(default_factory=frozenset)

    @property
    def topic_root(self) -> str:
        """`<prefix>/<site_id>/`: every alert topic of the site starts with it."""
        return f"{self.topic_prefix}/{self.site_id}/"

    def owns_topic(self, topic: str) -> bool:
        return topic.startswith(self.topic_root)


class TrustRegistry:
    """Sites by id, keys by key id; see the module docstring for what is trusted when."""

    def __init__(self, sites: Iterable[RegisteredSite], source: str = "<registry>") -> None:
        self.source = source
        self.sites: Mapping[str, RegisteredSite] = {s.site_id: s for s in sites}
        self._keys: dict[str, RegisteredKey] = {}
        self._revoked_by: dict[str, str] = {}
        for site in self.sites.values():
            for key in site.keys:
                if key.kid in self._keys:
                    raise ValueError(
                        f"key id {key.kid!r} is registered to {self._keys[key.kid].site_id} and {site.site_id}"
                    )
                self._keys[key.kid] = key
            self._revoked_by.update(dict.fromkeys(site.revoked, site.site_id))
        # Longest root first, so `edge/eu` is not taken for `edge` when both are registered.
        self._by_root = sorted(self.sites.values(), key=lambda s: len(s.topic_root), reverse=True)

    def key_for(self, kid: str, now: datetime) -> RegisteredKey:
        """The key `kid` names, when it is in force at `now`.

        Raises:
            Rejected: `key_revoked`, `unknown_key`, `key_not_yet_valid` or `key_expired`.
        """
        revoked_by = self._revoked_by.get(kid)
        if revoked_by is not None:
            raise Rejected("key_revoked", f"key {kid} is revoked by site {revoked_by}", site_id=revoked_by, kid=kid)
        key = self._keys.get(kid)
        if key is None:
            raise Rejected("unknown_key", f"no registered site has key {kid}", kid=kid)
        if key.not_before is not None and now < key.not_before:
            raise Rejected(
                "key_not_yet_valid",
                f"key {kid} of site {key.site_id} is in force from {key.not_before.isoformat()}",
                site_id=key.site_id,
                kid=kid,
            )
        if key.not_after is not None and now >= key.not_after:
            raise Rejected(
                "key_expired",
                f"key {kid} of site {key.site_id} was in force until {key.not_after.isoformat()}",
                site_id=key.site_id,
                kid=kid,
            )
        return key

    def site_of_topic(self, topic: str) -> RegisteredSite | None:
        """The registered site whose subtree holds `topic`, if any."""
        return next((s for s in self._by_root if s.owns_topic(topic)), None)

    def alert_filters(self) -> list[str]:
        """One subscription filter per site: every alert under its prefix and id."""
        return [alert_filter(s.topic_prefix, s.site_id) for s in self.sites.values()]
