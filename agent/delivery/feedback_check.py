"""Is this message a status the site should believe? Every check, in order, each with its own reason.

A message on `<prefix>/<site>/feedback/<level>` is untrusted until all of
these pass (the first that fails names the reason it is rejected for):

Checks 1-10 are those of every signed message from a recipient
(`agent.delivery.recipient_messages`):

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

__all__ = ["MAX_STATUS_BYTES", "REJECT_REASONS", "StatusChecker", "StatusVerdict"]

from dataclasses import dataclass

from agent.alerts.status import AlertStatus
from agent.config import PoliciesConfig
from agent.delivery.feedback_ledger import FeedbackLedger, SentMessage
from agent.delivery.jws import TYP_STATUS
from agent.delivery.recipient_messages import RecipientMessages

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
        self._ledger = ledger
        self._messages = RecipientMessages(
            site_id=site_id,
            prefix=prefix,
            section="feedback",
            typ=TYP_STATUS,
            model=AlertStatus,
            kind="status",
            max_bytes=MAX_STATUS_BYTES,
            policies=policies,
        )

    def use_policies(self, policies: PoliciesConfig) -> None:
        """Recipients and keys from now on; a key file that no longer reads leaves its recipient keyless (logged)."""
        self._messages.use_policies(policies)

    def check(self, topic: str, payload: bytes) -> StatusVerdict:
        got = self._messages.read(topic, payload)
        if got.reason or got.message is None:
            return StatusVerdict(got.recipient, got.level, got.reason, got.detail, got.kid, got.message)
        return self._against_what_was_sent(got.recipient, got.level, got.kid, got.message)

    def _against_what_was_sent(self, name: str, level: str, kid: str, status: AlertStatus) -> StatusVerdict:
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
