"""The alert schema: what leaves the box, as a versioned pydantic model.

Where a field overlaps with OASIS CAP 1.2 it has CAP's name and value set
(`identifier`, `sender`, `sent`, `expires`, `status`, `msgType`, `scope`,
`info.category`, `info.event`, `urgency`, `severity`, `certainty`, `area`), so
agencies can map alerts to CAP without a lookup table. What CAP has no place
for (camera, rule, counts, dwell) sits in `detection`.

Schema version 2 (`schema_version: 2`, an integer; version 1 was the string
`"1.0"` inside the old home-made envelope) is the payload of a JWS
(`agent.delivery.jws`, `typ` `edge-alert+json`). Besides the CAP envelope,
every published copy carries at top level, inside the signed bytes:

- `site_id`: the site that sent it (set by the alert builder);
- `recipient`, `agreement`: who this copy is for and the sharing agreement it
  is made under (`RecipientPolicy.name`, `.agreement_id`), and, where the
  site lists written agreements, `agreement_digest` (`Agreement.digest`);
- `expires`: absolute, `sent` plus the recipient's `retention_s`, else
  `mqtt.message_expiry_s`.

`Alert` is the alert as built and as it moves through the site, before any
recipient is known, so those are optional there; the sharing policy
(`agent.privacy.policy`) sets them in every recipient's view. `PublishedAlert`
is the same document with them required: what a receiver validates, and what
`agent/alerts/alert.schema.json` describes. The file is generated from it
(`python -m agent.alerts.schema`) and a test keeps it current.

`validation_level` says how far the alarm has been validated (see the field);
a copy held for verification (`release: after_verification`) leaves with the
level and `info.certainty: Observed` its verifier's status gave it.
"""

from __future__ import annotations

__all__ = [
    "DETECTION_LEVEL",
    "SCHEMA_VERSION",
    "Alert",
    "AlertArea",
    "AlertInfo",
    "DetectionDetails",
    "PrivacyInfo",
    "PublishedAlert",
    "SnapshotInfo",
    "write_json_schema",
]

import json
import sys
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION: Final = 2  # Final: typed as the Literal the model field accepts
DETECTION_LEVEL: Final = 2  # what a camera alone can say: someone is there
SCHEMA_PATH = Path(__file__).resolve().parent / "alert.schema.json"

Phase = Literal["start", "update", "end"]
Severity = Literal["Minor", "Moderate", "Severe", "Extreme"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertArea(_Model):
    """CAP `area`: where the event is. `circle` is CAP's `lat,lon radius_km`."""

    areaDesc: str = Field(description="site and zone or line, in words")
    circle: str | None = Field(default=None, description="CAP circle 'lat,lon radius_km'")


class AlertInfo(_Model):
    """CAP `info` block."""

    language: str = Field(default="en-US", description="CAP language")
    category: Literal["Security"] = Field(default="Security", description="CAP category")
    event: str = Field(description="what happened, e.g. 'Intrusion'")
    responseType: Literal["Monitor", "AllClear"] = Field(
        description="Monitor while the incident lasts, AllClear when it ends"
    )
    urgency: Literal["Immediate", "Expected"] = Field(description="CAP urgency")
    severity: Severity = Field(description="CAP severity, from the rule")
    certainty: Literal["Likely", "Observed"] = Field(default="Likely", description="machine detections are Likely")
    senderName: str = Field(description="site name")
    headline: str = Field(description="one-line summary")
    area: list[AlertArea] = Field(min_length=1, description="CAP areas")


class DetectionDetails(_Model):
    """What the camera saw: the part of an alert CAP has no field for."""

    phase: Phase = Field(description="incident phase of this message")
    incident_id: str = Field(description="one id from an incident's start to its end (UUIDv7)")
    sequence: int = Field(
        ge=1,
        description=(
            "per-camera message counter: 1 for the camera's first message after the agent's start, then "
            "one more for each message; it goes on across config reloads and camera restarts and starts "
            "again only when the agent does"
        ),
    )
    site_id: str
    camera_id: str
    rule: str = Field(description="rule name from the site config")
    rule_kind: str = Field(description="intrusion, loitering, line_crossing, ...")
    zone: str | None = Field(default=None, description="zone name, for zone rules")
    line: str | None = Field(default=None, description="line name, for line rules")
    direction: Literal["A_to_B", "B_to_A"] | None = Field(
        default=None, description="for line rules: crossing direction (side A is left of p1->p2)"
    )
    class_name: str = Field(description="class of the objects counted")
    count: int = Field(
        ge=0, description="objects that satisfy the rule now; for line rules, crossings in the incident so far"
    )
    dwell_s: float = Field(ge=0, description="longest time one object has satisfied the rule")
    confidence: float = Field(ge=0, le=1, description="highest detection score among them")
    first_seen: AwareDatetime = Field(description="when the first object started to count")
    last_seen: AwareDatetime = Field(description="when an object last counted")


class PrivacyInfo(_Model):
    """Added to each recipient's copy by the sharing policy (`agent.privacy.policy`)."""

    policy_version: str = Field(description="hash of the sharing policy that shaped this copy")
    pseudonym_key_id: str = Field(description="id of the key behind camera/track pseudonyms; changes on rotation")


class SnapshotInfo(_Model):
    """A picture of the alert moment (only where the recipient's policy allows one), or why none was sent."""

    withheld: str | None = Field(default=None, description="why no picture was sent (set instead of data)")
    content_type: Literal["image/jpeg"] | None = Field(default=None, description="media type of data_base64")
    data_base64: str | None = Field(default=None, description="the JPEG, base64")
    width_px: int | None = Field(default=None, ge=1, description="JPEG width")
    height_px: int | None = Field(default=None, ge=1, description="JPEG height")
    redaction: Literal["faces-filled", "unredacted"] | None = Field(
        default=None, description="faces-filled: every detected face filled solid before encoding"
    )
    faces_filled: int | None = Field(default=None, ge=0, description="faces found and filled")
    persons_filled: int | None = Field(default=None, ge=0, description="person boxes filled")


class Alert(_Model):
    """One message about an incident, as built; per-recipient fields are set by the sharing policy."""

    schema_version: Literal[2] = Field(default=SCHEMA_VERSION, description="version of this schema: 2")
    identifier: str = Field(description="CAP identifier: unique per message (UUIDv7)")
    sender: str = Field(description="CAP sender: edge-agent@<site id>")
    sent: AwareDatetime = Field(description="CAP sent: when the message was made")
    expires: AwareDatetime | None = Field(
        default=None,
        description=(
            "CAP info.expires, per recipient: sent plus the recipient's retention_s, else mqtt.message_expiry_s; "
            "a receiver drops the message after it"
        ),
    )
    site_id: str = Field(description="the site that sent the message (the signing key must be registered to it)")
    recipient: str | None = Field(
        default=None, description="per recipient: the recipient this copy is for (its name in the site policy)"
    )
    agreement: str | None = Field(
        default=None, description="per recipient: id of the sharing agreement this copy is made under"
    )
    agreement_digest: str | None = Field(
        default=None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="per recipient: SHA-256 of the agreement's terms (set where the site lists written agreements)",
    )
    status: Literal["Actual", "Exercise", "System", "Test"] = Field(
        description="CAP status: Actual from live cameras, Test from replays"
    )
    msgType: Literal["Alert", "Update", "Cancel"] = Field(
        description="CAP msgType: Alert starts an incident, Update follows it (and ends it)"
    )
    scope: Literal["Restricted"] = Field(default="Restricted", description="CAP scope")
    restriction: str = Field(
        default="Public-safety sharing agreement: recipients named in the site policy only",
        description="CAP restriction text (required with scope Restricted)",
    )
    references: list[str] = Field(
        default=[], description="CAP references to earlier messages: 'sender,identifier,sent'"
    )
    incidents: str = Field(description="CAP incidents: the incident id")
    validation_level: int = Field(
        default=DETECTION_LEVEL,
        ge=DETECTION_LEVEL,
        le=4,
        description=(
            "alarm validation level in the manner of TMA-AVS-01: 2 a person (or vehicle) is present, intent "
            "unknown (detection alone); 3 a person verified a threat to property; 4 a person verified a "
            "threat to life. 3 and 4 come only from a recipient's signed `verified` status; info.certainty "
            "is Likely at 2 and Observed at 3 and 4"
        ),
    )
    info: AlertInfo
    detection: DetectionDetails
    privacy: PrivacyInfo | None = Field(
        default=None, description="per-recipient: who this copy is for and the policy that shaped it"
    )
    snapshot: SnapshotInfo | None = Field(default=None, description="per-recipient: picture, where allowed")

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version_2(cls, value: Any) -> Any:
        # Said in words: a v1 sender (or a v1 file) should learn why, not just "Input should be 2".
        if value in ("1.0", "1") or (type(value) is int and value == 1):
            raise ValueError("schema v1 is no longer accepted (this is schema_version 2)")
        if type(value) is not int or value != SCHEMA_VERSION:
            raise ValueError(f"schema_version {value!r} is not supported (only {SCHEMA_VERSION})")
        return value

    def to_json_bytes(self) -> bytes:
        """Compact JSON (None fields left out)."""
        return self.model_dump_json(exclude_none=True).encode("utf-8")


class PublishedAlert(Alert):
    """One recipient's copy of an alert, as signed and published: the per-recipient fields are required."""

    model_config = ConfigDict(title="Alert")

    schema_version: Literal[2] = Field(description="version of this schema: 2 (a receiver refuses any other)")
    expires: AwareDatetime = Field(
        description=(
            "CAP info.expires: sent plus the recipient's retention_s, else mqtt.message_expiry_s; "
            "a receiver drops the message after it"
        )
    )
    recipient: str = Field(description="the recipient this copy is for (its name in the site policy)")
    agreement: str = Field(description="id of the sharing agreement this copy is made under")


def json_schema() -> dict[str, object]:
    schema = PublishedAlert.model_json_schema()
    schema["$id"] = f"urn:edge-agent:alert:{SCHEMA_VERSION}"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def write_json_schema(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_json_schema(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH))
