"""A signed message from a recipient on one of this site's topics: read it, or say why it is not believed.

Statuses (`<prefix>/<site>/feedback/<level>`) and break-glass requests
(`<prefix>/<site>/requests/<level>`) come the same way: one topic level
naming the recipient, a bounded JWS of the profile with its own `typ`,
signed with one of the recipient's `feedback_keys`, a payload of a strict
model that names the site and the recipient. `RecipientMessages.read` runs
those checks in that order; the first that fails names the reason
(`wrong_topic`, `unknown_recipient`, the envelope's own reasons, `wrong_type`,
`unverifiable`, `unknown_key`, `bad_signature`, `invalid_<kind>`,
`wrong_site`, `recipient_mismatch`). Each checker adds the checks only its
kind has (`agent.delivery.feedback_check`, `agent.delivery.break_glass_check`).
"""

from __future__ import annotations

__all__ = ["RecipientMessages", "SignedByRecipient", "recipients_and_keys"]

import logging
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ValidationError

from agent.config import PoliciesConfig, RecipientPolicy
from agent.delivery.feedback_keys import read_feedback_keys
from agent.delivery.feedback_stats import UNATTRIBUTED
from agent.delivery.jws import EnvelopeInvalid, load_json_bounded, open_envelope, verify_envelope
from agent.delivery.topics import build_topic
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.feedback")


class _Addressed(Protocol):
    @property
    def site_id(self) -> str: ...
    @property
    def recipient(self) -> str: ...


M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class SignedByRecipient(Generic[M]):
    """What reading one message found.

    Attributes:
        recipient: the configured recipient the topic names, or `UNATTRIBUTED`.
        level: the topic's last level as it came (untrusted; for the record).
        reason: '' when every check passed, else the first that failed.
        detail: that failure in words.
        kid: the key id the header names ('' when it could not be read).
        message: the verified message (from the schema check on, also when a later check failed).
        policy: the recipient's policy (when the topic names one).
    """

    recipient: str
    level: str
    reason: str
    detail: str = ""
    kid: str = ""
    message: M | None = None
    policy: RecipientPolicy | None = None


class RecipientMessages(Generic[M]):
    """Reads one kind of signed message for one site.

    Args:
        site_id: this site.
        prefix: the MQTT topic prefix.
        section: the topic level under the site (`feedback`, `requests`).
        typ: the JWS `typ` of this kind.
        model: the payload's model (with `site_id` and `recipient`).
        kind: its name in the schema reason (`invalid_<kind>`).
        max_bytes: the largest message read.
        policies: the recipients, with their key files (read now and on `use_policies`).
    """

    def __init__(
        self,
        *,
        site_id: str,
        prefix: str,
        section: str,
        typ: str,
        model: type[M],
        kind: str,
        max_bytes: int,
        policies: PoliciesConfig,
    ) -> None:
        self._site_id = site_id
        self._section = section
        self._base = build_topic(prefix, site_id, section) + "/"
        self._typ, self._model, self._kind, self._max_bytes = typ, model, kind, max_bytes
        self._by_level: dict[str, RecipientPolicy] = {}
        self._keys: dict[str, dict[str, Ed25519PublicKey]] = {}
        self.use_policies(policies)

    def use_policies(self, policies: PoliciesConfig) -> None:
        """Recipients and keys from now on; a key file that no longer reads leaves its recipient keyless (logged)."""
        self._by_level, self._keys = recipients_and_keys(policies)

    def read(self, topic: str, payload: bytes) -> SignedByRecipient[M]:
        level = topic[len(self._base) :] if topic.startswith(self._base) else ""
        if not level or "/" in level:
            detail = f"not a {self._section} topic of this site: {topic[:200]!r}"
            return SignedByRecipient(UNATTRIBUTED, level[:64], "wrong_topic", detail)
        policy = self._by_level.get(level)
        if policy is None:
            return SignedByRecipient(
                UNATTRIBUTED, level[:64], "unknown_recipient", f"no recipient {level!r} is configured"
            )
        name = policy.name

        def refused(reason: str, detail: str, kid: str = "", message: M | None = None) -> SignedByRecipient[M]:
            return SignedByRecipient(name, level, reason, detail, kid, message, policy)

        try:
            opened = open_envelope(payload, max_bytes=self._max_bytes)
        except EnvelopeInvalid as err:
            return refused(err.reason, str(err), err.kid or "")
        kid = opened.kid
        if opened.typ != self._typ:
            return refused("wrong_type", f"typ {opened.typ!r} is not {self._typ}", kid)
        keys = self._keys.get(name)
        if not keys:
            return refused("unverifiable", f"recipient {name!r} has no feedback_keys", kid)
        key = keys.get(kid)
        if key is None:
            return refused("unknown_key", f"kid {kid!r} is not a key of {name!r}", kid)
        try:
            body = verify_envelope(opened, key)
            load_json_bounded(body, max_bytes=self._max_bytes, max_depth=4)
        except EnvelopeInvalid as err:
            return refused(err.reason, str(err), kid)
        try:
            message = self._model.model_validate_json(body)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            return refused(f"invalid_{self._kind}", f"{where}: {first['msg']}"[:200], kid)
        addressed: _Addressed = message  # type: ignore[assignment]  # both models name site and recipient
        if addressed.site_id != self._site_id:
            return refused("wrong_site", f"site_id {addressed.site_id!r} is not this site", kid, message)
        if addressed.recipient != name:
            detail = f"recipient {addressed.recipient!r} sent on the topic of {name!r}"
            return refused("recipient_mismatch", detail, kid, message)
        return SignedByRecipient(name, level, "", "", kid, message, policy)


def recipients_and_keys(
    policies: PoliciesConfig,
) -> tuple[dict[str, RecipientPolicy], dict[str, dict[str, Ed25519PublicKey]]]:
    """Recipients by topic level (and by name), and each one's public keys by kid.

    A key file that no longer reads leaves its recipient keyless (logged): its messages are then refused
    as unverifiable, and the rest go on.
    """
    by_level = {r.topic_level: r for r in policies.recipients}
    for r in policies.recipients:
        by_level.setdefault(r.name, r)
    keys: dict[str, dict[str, Ed25519PublicKey]] = {}
    for r in policies.recipients:
        if r.feedback_keys is None:
            continue
        try:
            keys[r.name] = read_feedback_keys(r.feedback_keys)
        except ValueError as err:
            log_event(_log, "feedback_keys_unreadable", logging.ERROR, recipient=r.name, error=str(err))
    return by_level, keys
