"""Break-glass messages: a recipient's signed request to widen sharing for one incident, and the owner's notice.

A recipient (a police real-time crime centre during a live incident) may
ask a site to share more about one incident, for a while: snapshots (faces
still filled) and/or the exact location (5 decimals). It publishes a
`BreakGlassRequest` as a JWS (`agent.delivery.jws`, `typ`
`edge-request+json`, signed with the same key as its statuses) on
`<prefix>/<site>/requests/<recipient>`. The site decides against the
recipient's agreement (`break_glass` terms) and tells its owner what it
decided with a `BreakGlassNotice` (`typ` `edge-notice+json`, signed with the
site's key) on `<prefix>/<site>/notifications`.

Both are strict: unknown fields, a justification too short to mean
anything, a duration no agreement could grant are refused by the schema.
"""

from __future__ import annotations

__all__ = [
    "NOTICE_EVENTS",
    "REQUEST_SCHEMA_VERSION",
    "TYP_NOTICE",
    "TYP_REQUEST",
    "UUID7_PATTERN",
    "WIDENINGS",
    "BreakGlassNotice",
    "BreakGlassRequest",
]

from typing import Final, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

REQUEST_SCHEMA_VERSION: Final = 1
TYP_REQUEST: Final = "edge-request+json"
TYP_NOTICE: Final = "edge-notice+json"
WideningKind = Literal["snapshots", "exact_location"]
NoticeEvent = Literal["pending", "granted", "refused", "ended"]
WIDENINGS: Final = get_args(WideningKind)
NOTICE_EVENTS: Final = get_args(NoticeEvent)
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
# RFC 9562 UUIDv7, lower case as `agent.alerts.ids.Uuid7Factory` writes it: version 7, variant 10.
UUID7_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_MIN_JUSTIFICATION = 10


class BreakGlassRequest(BaseModel):
    """One recipient's request to widen what it receives of one incident, as it signs it."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: Literal[1] = Field(default=REQUEST_SCHEMA_VERSION, description="version of this schema")
    request_id: str = Field(pattern=UUID7_PATTERN, description="unique per request (UUIDv7)")
    site_id: str = Field(pattern=_ID, description="the site asked")
    recipient: str = Field(pattern=_ID, description="who asks: the recipient name in the site's policy")
    incident_id: str = Field(pattern=_ID, description="the incident (as its alerts carry it) to widen sharing for")
    widen: list[WideningKind] = Field(
        min_length=1, max_length=2, description="what to widen: snapshots (faces filled), exact_location (5 decimals)"
    )
    duration_s: int = Field(ge=60, le=604_800, description="how long the widening is asked for, in seconds")
    justification: str = Field(
        min_length=_MIN_JUSTIFICATION, max_length=1000, description="why: kept in the site's audit chain"
    )
    operator: str = Field(min_length=1, max_length=100, description="who, at the recipient, asks")
    sent: AwareDatetime = Field(description="when the recipient sent the request")

    @field_validator("widen")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each widening may be asked for once")
        return value

    @field_validator("justification")
    @classmethod
    def _says_something(cls, value: str) -> str:
        if len(value.strip()) < _MIN_JUSTIFICATION:
            raise ValueError(f"a justification needs at least {_MIN_JUSTIFICATION} characters besides blanks")
        return value

    def to_json_bytes(self) -> bytes:
        """Compact JSON, the form that is signed and published."""
        return self.model_dump_json().encode("utf-8")


class BreakGlassNotice(BaseModel):
    """What the site tells its owner about one break-glass request (signed with the site's key)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: Literal[1] = Field(default=REQUEST_SCHEMA_VERSION, description="version of this schema")
    notice_id: str = Field(pattern=UUID7_PATTERN, description="unique per notice (UUIDv7)")
    site_id: str = Field(pattern=_ID, description="the site that decided")
    event: NoticeEvent = Field(description="pending (waits for the owner), granted, refused, ended")
    request_id: str = Field(pattern=UUID7_PATTERN, description="the request it is about")
    recipient: str = Field(pattern=_ID, description="who asked")
    incident_id: str = Field(pattern=_ID, description="the incident")
    widen: list[WideningKind] = Field(min_length=1, max_length=2, description="what was asked for")
    duration_s: float = Field(ge=0, description="asked for (pending, granted, refused) or lasted (ended)")
    sent: AwareDatetime = Field(description="when the site sent this notice")
    justification: str | None = Field(default=None, max_length=1000, description="the recipient's reason")
    operator: str | None = Field(default=None, max_length=100, description="who asked, at the recipient")
    until: AwareDatetime | None = Field(default=None, description="with granted: when the widening ends")
    granted_by: Literal["automatic", "approved"] | None = Field(default=None, description="with granted")
    reason: str | None = Field(default=None, max_length=64, description="with refused: why")
    ended: Literal["expired", "revoked"] | None = Field(default=None, description="with ended: how")

    def to_json_bytes(self) -> bytes:
        """Compact JSON, the form that is signed and published."""
        return self.model_dump_json(exclude_none=True).encode("utf-8")
