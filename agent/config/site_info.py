"""The `site` section: which site this box guards and where."""

from __future__ import annotations

__all__ = ["Location", "SiteInfo"]

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from agent.config.model import ID_PATTERN, ConfigModel


class Location(ConfigModel):
    lat: float = Field(ge=-90, le=90, description="latitude in decimal degrees (WGS84)")
    lon: float = Field(ge=-180, le=180, description="longitude in decimal degrees (WGS84)")


class SiteInfo(ConfigModel):
    id: str = Field(pattern=ID_PATTERN, description="site id; used in MQTT topics")
    name: str = Field(min_length=1, max_length=200, description="human-readable site name")
    location: Location = Field(description="site location")
    timezone: str = Field(default="UTC", description="IANA time zone of the site, for schedules")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value
