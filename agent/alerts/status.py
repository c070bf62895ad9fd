"""Status messages a recipient sends back to a site about one alert (schema v2).

A recipient (a police real-time crime centre, a control room) publishes each
status as a JWS (`agent.delivery.jws`, `typ` `edge-status+json`, signed with
the recipient's own key) on `<prefix>/<site>/feedback/<recipient>`. The
order follows police alarm-dispatch practice (ASAP-to-PSAP: accepted,
dispatched, arrived, closed) plus a control room's verdict:

- `received`: sent automatically when the recipient's software accepted the alert;
- `acknowledged`: a person has seen it;
- `verified` / `dismissed`: a control room's verdict on what the cameras show;
  `verified` may carry the operator's `validation_level` (3: a threat to
  property, 4: to life; 3 when left out), which a site holding the alert
  for verification releases it with;
- `dispatched`, `on_scene`: a unit is on its way, has arrived;
- `closed`: done, with a `disposition` (`confirmed`, `false_alarm`, `unfounded`, `test`).

Every status names the alert and its incident, so a site can tie it to what
it sent, and carries its own id, so a repeated status is recognised.
"""

from __future__ import annotations

__all__ = ["DISPOSITIONS", "STATUS_KINDS", "STATUS_SCHEMA_VERSION", "AlertStatus"]

from typing import Final, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

STATUS_SCHEMA_VERSION: Final = 2
StatusKind = Literal["received", "acknowledged", "verified", "dismissed", "dispatched", "on_scene", "closed"]
Disposition = Literal["confirmed", "false_alarm", "unfounded", "test"]
STATUS_KINDS: Final = get_args(StatusKind)
DISPOSITIONS: Final = get_args(Disposition)
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class AlertStatus(BaseModel):
    """One status about one alert, as signed by the recipient that sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: Literal[2] = Field(default=STATUS_SCHEMA_VERSION, description="version of this schema")
    status_id: str = Field(pattern=_ID, description="unique per status message (UUIDv7)")
    site_id: str = Field(pattern=_ID, description="the site the alert came from")
    recipient: str = Field(pattern=_ID, description="who sends the status: the recipient name in the site's policy")
    alert_id: str = Field(pattern=_ID, description="the alert's CAP identifier")
    incident_id: str = Field(pattern=_ID, description="the alert's incident id")
    status: StatusKind = Field(description="what happened to the alert at the recipient")
    disposition: Disposition | None = Field(default=None, description="with `closed` only: how it ended")
    sent: AwareDatetime = Field(description="when the recipient sent this status")
    operator: str | None = Field(default=None, max_length=100, description="who, at the recipient, if anyone")
    note: str | None = Field(default=None, max_length=500, description="free text from the operator")
    validation_level: Literal[3, 4] | None = Field(
        default=None, description="with `verified` only: 3 a threat to property, 4 a threat to life (default 3)"
    )

    @model_validator(mode="after")
    def _disposition_with_closed(self) -> AlertStatus:
        if (self.status == "closed") != (self.disposition is not None):
            raise ValueError("a disposition goes with status closed, and only with it")
        if self.validation_level is not None and self.status != "verified":
            raise ValueError("a validation_level goes with status verified only")
        return self

    @property
    def verified_level(self) -> int:
        """The level a `verified` status raises its alert to."""
        return self.validation_level or 3

    def to_json_bytes(self) -> bytes:
        """Compact JSON, the form that is signed and published."""
        return self.model_dump_json(exclude_none=True).encode("utf-8")
