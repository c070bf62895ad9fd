"""The site config schema (pydantic v2).

One YAML file describes a site: its cameras with their zones and rules, the
detector, the broker, the outbox and who receives what. Every model forbids
unknown keys and is frozen; every field has a description and bounds, and
units are in the names. Cross-field checks (a rule naming a zone that does
not exist) live in small validators next to the fields they check.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "CameraConfig",
    "DetectorConfig",
    "IntrusionRuleConfig",
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
    "SiteInfo",
    "ZoneConfig",
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


class ZoneConfig(_Model):
    name: str = Field(pattern=ID_PATTERN, description="zone name, unique within the camera")
    points: list[Point] = Field(min_length=3, description="polygon vertices, in order")
    units: Literal["normalized", "pixels"] = Field(
        default="normalized",
        description="normalized: 0-1 fractions of frame width/height; pixels: frame pixels",
    )

    @model_validator(mode="after")
    def _points_in_range(self) -> ZoneConfig:
        if self.units == "normalized":
            for x, y in self.points:
                if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    raise ValueError(
                        f"zone {self.name!r}: point ({x}, {y}) is outside 0-1; "
                        "use units: pixels for pixel coordinates"
                    )
        elif any(x < 0 or y < 0 for x, y in self.points):
            raise ValueError(f"zone {self.name!r}: pixel coordinates must not be negative")
        return self


class MaskConfig(_Model):
    name: str = Field(pattern=ID_PATTERN, description="mask name, for logs and previews")
    points: list[Point] = Field(min_length=3, description="polygon vertices, in order")
    units: Literal["normalized", "pixels"] = Field(default="normalized", description="as for zones")


class MotionConfig(_Model):
    mode: Literal["always", "on_motion", "regions"] = Field(
        default="on_motion",
        description=(
            "always: detect on every frame; on_motion: skip frames without motion; "
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


class IntrusionRuleConfig(_Model):
    kind: Literal["intrusion"] = Field(description="an object of a class inside a zone")
    name: str = Field(pattern=ID_PATTERN, description="rule name; used in topics and alerts")
    zone: str = Field(description="name of a zone of this camera")
    classes: list[str] = Field(default=["person"], min_length=1, description="class names that count")
    min_duration_s: float = Field(default=1.0, ge=0, le=3600, description="time inside before alerting")
    min_score: float = Field(default=0.0, ge=0, le=1, description="minimum detection score that counts")
    severity: Severity = Field(default="Moderate", description="CAP severity of the alert")
    update_interval_s: float = Field(
        default=10.0, ge=0.5, le=3600, description="shortest time between two updates of one incident"
    )
    end_after_s: float = Field(
        default=2.0, ge=0, le=3600, description="the incident ends when the zone has been empty this long"
    )
    cooldown_s: float = Field(
        default=10.0, ge=0, le=86400, description="after an end, a new start waits this long"
    )


RuleConfig = Annotated[IntrusionRuleConfig, Field(discriminator="kind")]


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
        _require_unique(zone_names, f"camera {self.id!r}: zone")
        _require_unique([r.name for r in self.rules], f"camera {self.id!r}: rule")
        for rule in self.rules:
            if rule.zone not in zone_names:
                known = ", ".join(zone_names) or "none"
                raise ValueError(
                    f"rule {rule.name!r} names zone {rule.zone!r}, which camera {self.id!r} "
                    f"does not define (zones: {known})"
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


class RecipientPolicy(_Model):
    name: str = Field(pattern=ID_PATTERN, description="recipient name, also the last topic level")
    rules: list[str] = Field(default=["*"], min_length=1, description="rule names it receives; * for all")
    min_severity: Severity = Field(default="Minor", description="lowest severity it receives")


class PoliciesConfig(_Model):
    recipients: list[RecipientPolicy] = Field(
        default_factory=lambda: [RecipientPolicy(name="default")],
        min_length=1,
        description="who receives alerts; the default recipient receives metadata of every alert",
    )

    @model_validator(mode="after")
    def _unique(self) -> PoliciesConfig:
        _require_unique([r.name for r in self.recipients], "recipient")
        return self


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
