"""Is this message a status the site should believe? Every check, in order, each with its own reason.

A message on `<prefix>/<site>/feedback/<level>` is untrusted until all of
these pass (the first that fails names the reason it is rejected for):

1. `wrong_topic`: not exactly one level under this site's feedback topic.
2. `unknown_recipient`: the level names no configured recipient (its topic
   level, which is its MQTT user under the shipped ACL, or its name).
3. `too_large`, `too_deep`, `not_json`, `malformed`, `bad_header`: not a
   bounded, well-formed JWS of the profile (`agent.delivery.jws.open_envelope`).
4. `wrong_type`: `typ` is not `edge-status+json` (an alert is not a status).
5. `unverifiable`: the recipient has no `feedback_keys`.
6. `unknown_key`: the `kid` is none of the recipient's keys.
7. `bad_signature`: the signature does not verify with that key.
8. `invalid_status`: the payload is not an `AlertStatus`.
9. `wrong_site`: its `site_id` is not this site.
10. `recipient_mismatch`: its `recipient` is not the recipient the topic names.
11. `duplicate` (ignored, not rejected): its `status_id` was seen before.
12. `unknown_alert`: no alert with that id was sent to that recipient.
13. `incident_mismatch`: the alert belongs to another incident.
"""

from __future__ import annotations

__all__ = ["MAX_STATUS_BYTES", "REJECT_REASONS", "StatusChecker", "StatusVerdict", "recipients_and_keys"]

import logging
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from agent.alerts.status import AlertStatus
from agent.config import PoliciesConfig, RecipientPolicy
from agent.delivery.feedback_keys import read_feedback_keys
from agent.delivery.feedback_ledger import FeedbackLedger, SentMessage
from agent.delivery.feedback_stats import UNATTRIBUTED
from agent.delivery.jws import TYP_STATUS, EnvelopeInvalid, load_json_bounded, open_envelope, verify_envelope
from agent.delivery.topics import build_topic
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.feedback")
# A status is a few hundred bytes; its note is at most 500 characters.
MAX_STATUS_BYTES = 16384
# Every reason a status is rejected for, in the order of the checks (`overloaded`: the intake's queue was full).
REJECT_REASONS = (
    "wrong_topic",
    "unknown_recipient",
    "too_large",
    "too_deep",
    "not_json",
    "malformed",
    "bad_header",
    "wrong_type",
    "unverifiable",
    "unknown_key",
    "bad_signature",
    "invalid_status",
    "wrong_site",
    "recipient_mismatch",
    "unknown_alert",
    "incident_mismatch",
    "overloaded",
)


@dataclass(frozen=True, slots=True)
class StatusVerdict:
    """What the checks found.

    Attributes:
        recipient: the configured recipient the topic names, or `UNATTRIBUTED`.
        level: the topic's last level as it came (untrusted; for the record).
        reason: '' when accepted, else the first check that failed (see the module docstring).
        detail: that failure in words.
        kid: the key id the header names ('' when it could not be read).
        status: the verified status (when the signature and schema checks passed).
        sent: the message that carried the alert to the recipient (when accepted).
    """

    recipient: str
    level: str
    reason: str
    detail: str = ""
    kid: str = ""
    status: AlertStatus | None = None
    sent: SentMessage | None = None


class StatusChecker:
    """Runs the checks for one site (see the module docstring).

    Args:
        site_id: this site.
        prefix: the MQTT topic prefix.
        policies: the recipients, with their key files (read now and on `use_policies`).
        ledger: which alerts went to whom, and which statuses were seen.
    """

    def __init__(self, site_id: str, prefix: str, policies: PoliciesConfig, ledger: FeedbackLedger) -> None:
        self._site_id = site_id
        self._base = build_topic(prefix, site_id, "feedback") + "/"
        self._ledger = ledger
        self._by_level: dict[str, RecipientPolicy] = {}
        self._keys: dict[str, dict[str, Ed25519PublicKey]] = {}
        self.use_policies(policies)

    def use_policies(self, policies: PoliciesConfig) -> None:
        """Recipients and keys from now on; a key file that no longer reads leaves its recipient keyless (logged)."""
        self._by_level, self._keys = recipients_and_keys(policies)

    def check(self, topic: str, payload: bytes) -> StatusVerdict:
        level = topic[len(self._base) :] if topic.startswith(self._base) else ""
        if not level or "/" in level:
            detail = f"not a feedback topic of this site: {topic[:200]!r}"
            return StatusVerdict(UNATTRIBUTED, level[:64], "wrong_topic", detail)
        policy = self._by_level.get(level)
        if policy is None:
            return StatusVerdict(UNATTRIBUTED, level[:64], "unknown_recipient", f"no recipient {level!r} is configured")
        name = policy.name
        try:
            opened = open_envelope(payload, max_bytes=MAX_STATUS_BYTES)
        except EnvelopeInvalid as err:
            return StatusVerdict(name, level, err.reason, str(err), err.kid or "")
        kid = opened.kid
        if opened.typ != TYP_STATUS:
            return StatusVerdict(name, level, "wrong_type", f"typ {opened.typ!r} is not {TYP_STATUS}", kid)
        keys = self._keys.get(name)
        if not keys:
            return StatusVerdict(name, level, "unverifiable", f"recipient {name!r} has no feedback_keys", kid)
        key = keys.get(kid)
        if key is None:
            return StatusVerdict(name, level, "unknown_key", f"kid {kid!r} is not a key of {name!r}", kid)
        try:
            body = verify_envelope(opened, key)
            load_json_bounded(body, max_bytes=MAX_STATUS_BYTES, max_depth=4)
        except EnvelopeInvalid as err:
            return StatusVerdict(name, level, err.reason, str(err), kid)
        try:
            status = AlertStatus.model_validate_json(body)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            return StatusVerdict(name, level, "invalid_status", f"{where}: {first['msg']}"[:200], kid)
        return self._against_what_was_sent(name, level, kid, status)

    def _against_what_was_sent(self, name: str, level: str, kid: str, status: AlertStatus) -> StatusVerdict:
        if status.site_id != self._site_id:
            return StatusVerdict(name, level, "wrong_site", f"site_id {status.site_id!r} is not this site", kid, status)
        if status.recipient != name:
            detail = f"recipient {status.recipient!r} sent on the topic of {name!r}"
            return StatusVerdict(name, level, "recipient_mismatch", detail, kid, status)
        if self._ledger.has_status(status.status_id):
            return StatusVerdict(name, level, "duplicate", f"status {status.status_id} seen before", kid, status)
        sent = self._ledger.sent_to(status.alert_id, name)
        if sent is None:
            detail = f"no alert {status.alert_id} was sent to {name!r}"
            return StatusVerdict(name, level, "unknown_alert", detail, kid, status)
        if sent.incident_id and sent.incident_id != status.incident_id:
            detail = f"alert {status.alert_id} belongs to incident {sent.incident_id}, not {status.incident_id}"
            return StatusVerdict(name, level, "incident_mismatch", detail, kid, status)
        return StatusVerdict(name, level, "", "", kid, status, sent)


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
