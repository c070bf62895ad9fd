"""Is this message a break-glass request the site should believe, and what do the agreement's terms say to it?

A message on `<prefix>/<site>/requests/<level>` is untrusted until all of
these pass (the first that fails names the reason it is rejected for; none
of them reaches the request's own fields, so nothing it says is recorded as
said by the recipient):

The checks are those of every signed message from a recipient
(`agent.delivery.recipient_messages`):

1. `wrong_topic`: not exactly one level under this site's requests topic.
2. `unknown_recipient`: the level names no configured recipient (its topic
   level, which is its MQTT user under the shipped ACL, or its name).
3. `too_large`, `too_deep`, `not_json`, `malformed`, `bad_header`: not a
   bounded, well-formed JWS of the profile (`agent.delivery.jws.open_envelope`).
4. `wrong_type`: `typ` is not `edge-request+json` (a status is not a request).
5. `unverifiable`: the recipient has no `feedback_keys` (the keys it signs statuses with).
6. `unknown_key`: the `kid` is none of the recipient's keys.
7. `bad_signature`: the signature does not verify with that key (a forgery).
8. `invalid_request`: the payload is not a `BreakGlassRequest`.
9. `wrong_site`: its `site_id` is not this site.
10. `recipient_mismatch`: its `recipient` is not the recipient the topic names.

A request that passes is the recipient's word: the desk records it, then
`answer_under` holds it against the recipient's agreement (`break_glass`).
"""

from __future__ import annotations

__all__ = [
    "MAX_REQUEST_AGE_S",
    "MAX_REQUEST_BYTES",
    "REJECT_REASONS",
    "RequestChecker",
    "RequestVerdict",
    "TermsAnswer",
    "answer_under",
    "terms_refusal",
]

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from agent.alerts.request import TYP_REQUEST, BreakGlassRequest
from agent.config import PoliciesConfig, RecipientPolicy
from agent.config.agreements import Agreement
from agent.delivery.recipient_messages import RecipientMessages

# A request is well under 2 kB: its justification is at most 1000 characters.
MAX_REQUEST_BYTES = 16384
# A request older than this when it arrives (a broker holding it through an outage, a replay) is stale.
MAX_REQUEST_AGE_S = 3600.0
_FUTURE_SKEW_S = 300.0
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
    "invalid_request",
    "wrong_site",
    "recipient_mismatch",
    "overloaded",
)


@dataclass(frozen=True, slots=True)
class RequestVerdict:
    """What the checks found.

    Attributes:
        recipient: the configured recipient the topic names, or `UNATTRIBUTED`.
        level: the topic's last level as it came (untrusted; for the record).
        reason: '' when believed, else the first check that failed (see the module docstring).
        detail: that failure in words.
        kid: the key id the header names ('' when it could not be read).
        request: the verified request (when believed).
        policy: the recipient's policy (when the topic names one).
    """

    recipient: str
    level: str
    reason: str
    detail: str = ""
    kid: str = ""
    request: BreakGlassRequest | None = None
    policy: RecipientPolicy | None = None


class RequestChecker:
    """Runs the checks for one site (see the module docstring).

    Args:
        site_id: this site.
        prefix: the MQTT topic prefix.
        policies: the recipients, with their key files (read now and on `use_policies`).
    """

    def __init__(self, site_id: str, prefix: str, policies: PoliciesConfig) -> None:
        self._messages = RecipientMessages(
            site_id=site_id,
            prefix=prefix,
            section="requests",
            typ=TYP_REQUEST,
            model=BreakGlassRequest,
            kind="request",
            max_bytes=MAX_REQUEST_BYTES,
            policies=policies,
        )

    def use_policies(self, policies: PoliciesConfig) -> None:
        """Recipients and keys from now on; a key file that no longer reads leaves its recipient keyless (logged)."""
        self._messages.use_policies(policies)

    def check(self, topic: str, payload: bytes) -> RequestVerdict:
        got = self._messages.read(topic, payload)
        # Nothing a request says counts before every check passed (see the module docstring).
        request = got.message if not got.reason else None
        return RequestVerdict(got.recipient, got.level, got.reason, got.detail, got.kid, request, got.policy)


@dataclass(frozen=True, slots=True)
class TermsAnswer:
    """What the agreement says to a believed request: grant now, wait for the owner, or refuse (with why)."""

    action: Literal["grant", "pending", "refuse"]
    reason: str = ""
    detail: str = ""


def answer_under(agreement: Agreement | None, request: BreakGlassRequest, received: datetime) -> TermsAnswer:
    """The agreement's answer to `request`, received at `received`.

    Refusal reasons: those of `terms_refusal`, and `stale` (sent more than `MAX_REQUEST_AGE_S`
    before it arrived, or from the future).
    """
    refusal = terms_refusal(agreement, request.recipient, request.widen, request.duration_s, received)
    if refusal is not None:
        return refusal
    age_s = (received - request.sent).total_seconds()
    if age_s > MAX_REQUEST_AGE_S or age_s < -_FUTURE_SKEW_S:
        return TermsAnswer("refuse", "stale", f"sent {age_s:.0f} s before it arrived")
    auto = agreement is not None and agreement.break_glass.auto_grant
    return TermsAnswer("grant") if auto else TermsAnswer("pending")


def terms_refusal(
    agreement: Agreement | None, recipient: str, widen: Sequence[str], duration_s: int, at: datetime
) -> TermsAnswer | None:
    """Why the agreement refuses widening `widen` for `duration_s` at `at`; None when it allows it.

    Reasons: `no_agreement` (the recipient receives under no written agreement), `not_allowed`
    (its agreement allows no break-glass), `agreement_not_in_force`, `beyond_limits` (longer than
    `max_duration_s`, or widening what `may_widen` does not list).
    """
    if agreement is None:
        return TermsAnswer("refuse", "no_agreement", f"{recipient} receives under no written agreement")
    terms = agreement.break_glass
    if not terms.allowed:
        return TermsAnswer("refuse", "not_allowed", f"agreement {agreement.id} allows no break-glass")
    if agreement.state(at) != "in_force":
        return TermsAnswer("refuse", "agreement_not_in_force", f"agreement {agreement.id} is not in force")
    if duration_s > terms.max_duration_s:
        detail = f"asks for {duration_s} s; agreement {agreement.id} allows at most {terms.max_duration_s} s"
        return TermsAnswer("refuse", "beyond_limits", detail)
    beyond = sorted(set(widen) - set(terms.may_widen))
    if beyond:
        detail = f"asks to widen {', '.join(beyond)}; agreement {agreement.id} allows {', '.join(terms.may_widen)}"
        return TermsAnswer("refuse", "beyond_limits", detail)
    return None
