"""The rules of a camera: zone rules (intrusion, loitering, crowding) and line rules."""

from __future__ import annotations

__all__ = [
    "RULE_KINDS",
    "CrowdingRuleConfig",
    "Direction",
    "IntrusionRuleConfig",
    "LineCrossingRuleConfig",
    "LineRuleConfig",
    "LoiteringRuleConfig",
    "RuleConfig",
    "WrongWayRuleConfig",
    "ZoneRuleConfig",
]

from typing import Annotated, Literal

from pydantic import Field, model_validator

from agent.config.model import ID_PATTERN, ConfigModel, Severity
from agent.config.schedules import ScheduleConfig

Direction = Literal["A_to_B", "B_to_A"]


class _RuleBase(ConfigModel):
    name: str = Field(pattern=ID_PATTERN, description="rule name; used in topics and alerts")
    classes: list[str] = Field(default=["person"], min_length=1, description="class names that count")
    min_score: float = Field(default=0.0, ge=0, le=1, description="minimum detection score that counts")
    severity: Severity = Field(default="Moderate", description="CAP severity of the alert")
    schedule: ScheduleConfig | None = Field(default=None, description="when the rule is armed; default always")
    update_interval_s: float = Field(
        default=10.0, ge=0.5, le=3600, description="shortest time between two updates of one incident"
    )
    cooldown_s: float = Field(default=10.0, ge=0, le=86400, description="after an end, a new start waits this long")


class _ZoneRuleBase(_RuleBase):
    zone: str = Field(description="name of a zone of this camera")
    end_after_s: float = Field(
        default=2.0, ge=0, le=3600, description="the incident ends when nothing has satisfied the rule this long"
    )


class IntrusionRuleConfig(_ZoneRuleBase):
    kind: Literal["intrusion"] = Field(description="an object of a class inside a zone")
    min_duration_s: float = Field(default=1.0, ge=0, le=3600, description="time inside before alerting")


class LoiteringRuleConfig(_ZoneRuleBase):
    kind: Literal["loitering"] = Field(description="an object staying inside a zone for a long time")
    min_dwell_s: float = Field(default=30.0, gt=0, le=86400, description="time inside before alerting")
    grace_s: float = Field(
        default=3.0,
        ge=0,
        le=3600,
        description="an object's dwell clock resets only after it has been out of the zone (or unseen) this long",
    )


class CrowdingRuleConfig(_ZoneRuleBase):
    kind: Literal["crowding"] = Field(description="at least min_count objects inside a zone")
    min_count: int = Field(default=5, ge=2, le=10000, description="objects inside that make a crowd")
    min_duration_s: float = Field(default=5.0, ge=0, le=3600, description="time the crowd must last")


class _LineRuleBase(_RuleBase):
    line: str = Field(description="name of a line of this camera")
    margin: float = Field(
        default=0.01,
        ge=0,
        le=1000,
        description="hysteresis: how far beyond the line an object must be before a crossing counts",
    )
    margin_units: Literal["fraction", "pixels"] = Field(
        default="fraction", description="fraction: of the frame height; pixels: frame pixels"
    )
    incident_window_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="crossings closer together than this join one incident (start, then updates with the count)",
    )
    cooldown_s: float = Field(
        default=0.0, ge=0, le=86400, description="after an end, a new incident waits this long (crossings still count)"
    )

    @model_validator(mode="after")
    def _margin_in_range(self) -> _LineRuleBase:
        if self.margin_units == "fraction" and self.margin > 0.5:
            raise ValueError(f"rule {self.name!r}: a margin fraction above 0.5 of the frame height never counts")
        return self


class LineCrossingRuleConfig(_LineRuleBase):
    kind: Literal["line_crossing"] = Field(description="objects crossing a line")
    direction: Literal["A_to_B", "B_to_A", "both"] = Field(
        default="both", description="which crossings count; both keeps one incident per direction"
    )


class WrongWayRuleConfig(_LineRuleBase):
    kind: Literal["wrong_way"] = Field(description="objects crossing a line in the forbidden direction")
    forbidden_direction: Direction = Field(description="the direction that raises an alert")
    severity: Severity = Field(default="Severe", description="CAP severity of the alert")


RULE_KINDS: frozenset[str] = frozenset({"intrusion", "loitering", "crowding", "line_crossing", "wrong_way"})
ZoneRuleConfig = IntrusionRuleConfig | LoiteringRuleConfig | CrowdingRuleConfig
LineRuleConfig = LineCrossingRuleConfig | WrongWayRuleConfig
RuleConfig = Annotated[
    IntrusionRuleConfig | LoiteringRuleConfig | CrowdingRuleConfig | LineCrossingRuleConfig | WrongWayRuleConfig,
    Field(discriminator="kind"),
]
