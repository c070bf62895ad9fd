"""The `policies.agreements` section: the written terms each recipient receives under.

An agreement names the parties, the purpose and legal basis of the sharing,
what may be shared at most (`shares`: a field allow-list, location precision,
snapshots yes or no), the retention asked of the recipient, when it is in
force (`valid_from`, `valid_until`) and whom to contact for its review. A
recipient names its agreement (`RecipientPolicy.agreement`); what the
recipient's own policy asks for must stay within the agreement's `shares`,
which the loader checks at the recipient's field.

Two kinds of term change how alerts leave the box:

- `release: after_verification`: alerts for recipients under the agreement
  wait until the `verifier` (a control room, itself a recipient) sends a
  signed `verified` (released with its level) or `dismissed` (withheld for
  good); `auto_release_after_s` lets them go unverified after a while, and
  severities in `never_held` are never held;
- `break_glass`: whether a recipient may ask to widen sharing for one
  incident (snapshots, exact location), for how long at most, and whether a
  request within those limits is granted without the owner's approval.

`digest` is what every payload carries beside the agreement id, inside the
signed bytes: SHA-256 over the canonical JSON of the terms, the text file's
own SHA-256 included, so a receiver can show which terms an alert came under
and anyone holding the document can check it is the same one.
"""

from __future__ import annotations

__all__ = [
    "Agreement",
    "AgreementShares",
    "BreakGlassTerms",
    "Widening",
    "agreement_digest",
    "agreement_state",
    "agreement_warnings",
]

import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agent.alerts.fields import check_field_paths
from agent.config.model import ID_PATTERN, ConfigModel, Severity

Widening = Literal["snapshots", "exact_location"]
AgreementState = Literal["in_force", "not_yet_valid", "expired"]
_TEXT_MAX_BYTES = 16 * 1024 * 1024


class AgreementShares(ConfigModel):
    """The most an agreement lets any of its recipients receive."""

    fields: list[str] = Field(
        default=["*"],
        min_length=1,
        description="alert fields (dotted paths, as in a recipient's fields) recipients may be sent; * for any",
    )
    max_location_decimals: int | None = Field(
        default=None,
        ge=0,
        le=5,
        description="most decimals of latitude/longitude a recipient may get; None: no limit; 0 with zone_only",
    )
    snapshots: bool = Field(default=False, description="whether recipients may get (redacted) snapshots")

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        check_field_paths(value)
        return value

    def allows_field(self, path: str) -> bool:
        """Whether a recipient's field path lies within these fields."""
        if path == "*":
            return "*" in self.fields
        return any(f == "*" or path == f or path.startswith(f + ".") for f in self.fields)


class BreakGlassTerms(ConfigModel):
    """Whether and how far a recipient may widen sharing for one incident."""

    allowed: bool = Field(default=False, description="whether break-glass requests may be granted at all")
    max_duration_s: int = Field(default=3600, ge=60, le=604_800, description="longest grant, in seconds")
    may_widen: list[Widening] = Field(
        default=["snapshots", "exact_location"],
        min_length=1,
        description="what a grant may widen: snapshots (faces filled) and/or exact_location (5 decimals)",
    )
    auto_grant: bool = Field(
        default=False,
        description=(
            "grant a request within these limits at once; otherwise it waits for "
            "`edge-agent requests approve ID` on the box"
        ),
    )


class Agreement(ConfigModel):
    """One sharing agreement, as signed by the parties."""

    id: str = Field(pattern=ID_PATTERN, description="the agreement's id; carried in every payload made under it")
    title: str = Field(default="", max_length=200, description="a short human name")
    parties: list[str] = Field(min_length=2, description="who signed it: the site operator and the recipient(s)")
    purpose: str = Field(min_length=1, max_length=2000, description="what the shared data is for, and only for")
    legal_basis: str = Field(min_length=1, max_length=2000, description="the law or contract the sharing rests on")
    valid_from: date | datetime = Field(description="first day (UTC) or moment (with offset) it is in force")
    valid_until: date | datetime = Field(description="last day (UTC, inclusive) or moment (with offset) in force")
    review_contact: str = Field(min_length=1, max_length=300, description="who to contact about its review")
    text_file: Path | None = Field(
        default=None,
        description="the signed document (relative to the config file); its SHA-256 goes into the digest",
    )
    retention_s: int | None = Field(
        default=None,
        ge=1,
        le=31_536_000,
        description="retention asked of recipients; a recipient's retention_s may not exceed it (default for it)",
    )
    shares: AgreementShares = Field(default_factory=AgreementShares, description="the most that may be shared")
    release: Literal["immediate", "after_verification"] = Field(
        default="immediate",
        description="after_verification: alerts wait for the verifier's signed verdict before they are released",
    )
    verifier: str | None = Field(
        default=None, pattern=ID_PATTERN, description="with after_verification: the recipient whose verdict counts"
    )
    auto_release_after_s: float | None = Field(
        default=None,
        ge=1.0,
        le=86_400.0,
        description="with after_verification: release unverified after this long (default: wait for a verdict)",
    )
    never_held: list[Severity] = Field(
        default=[], description="with after_verification: severities released at once, never held"
    )
    warn_before_days: int = Field(
        default=30, ge=0, le=365, description="days before valid_until that validate and the stats warn"
    )
    break_glass: BreakGlassTerms = Field(default_factory=BreakGlassTerms, description="break-glass widening")
    text_sha256: str | None = Field(default=None, exclude=True, description="set by the loader from text_file")

    @field_validator("text_file")
    @classmethod
    def _resolved(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        context = info.context if isinstance(info.context, dict) else {}
        base = context.get("config_dir")
        path = Path(base) / value if base is not None and not value.is_absolute() else value
        try:
            size = path.stat().st_size
        except OSError as err:
            raise ValueError(f"cannot read the agreement text {path}: {err.strerror or err}") from err
        if size > _TEXT_MAX_BYTES:
            raise ValueError(f"agreement text {path} is larger than {_TEXT_MAX_BYTES // (1024 * 1024)} MiB")
        return path

    @model_validator(mode="after")
    def _consistent(self) -> Agreement:
        if _start(self.valid_from) > _end(self.valid_until):
            raise ValueError("valid_until is before valid_from")
        held_settings = {"verifier", "auto_release_after_s", "never_held"} & self.model_fields_set
        if self.release == "after_verification" and self.verifier is None:
            raise ValueError("release after_verification needs a verifier (the recipient whose verdict counts)")
        if self.release == "immediate" and held_settings:
            raise ValueError(f"{', '.join(sorted(held_settings))} set with release immediate: nothing is held")
        if self.text_file is not None and self.text_sha256 is None:
            digest = hashlib.sha256(self.text_file.read_bytes()).hexdigest()
            object.__setattr__(self, "text_sha256", digest)  # frozen model: set once, at load
        return self

    @property
    def digest(self) -> str:
        return agreement_digest(self)

    def state(self, at: datetime) -> AgreementState:
        return agreement_state(self, at)

    def days_left(self, at: datetime) -> float:
        """Days from `at` to the end of the agreement (negative once it has ended)."""
        return (_end(self.valid_until) - at).total_seconds() / 86_400.0


def agreement_digest(agreement: Agreement) -> str:
    """`sha256:` and the hex SHA-256 of the canonical JSON of the terms (the text's SHA-256 included)."""
    terms = agreement.model_dump(mode="json", exclude={"text_file", "warn_before_days"})
    terms["text_sha256"] = agreement.text_sha256
    text = json.dumps(terms, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def agreement_state(agreement: Agreement, at: datetime) -> AgreementState:
    """Whether the agreement is in force at `at` (an aware time)."""
    if at < _start(agreement.valid_from):
        return "not_yet_valid"
    if at > _end(agreement.valid_until):
        return "expired"
    return "in_force"


def agreement_warnings(agreements: list[Agreement], recipients: dict[str, str], at: datetime) -> list[str]:
    """What `validate` and the stats say about the agreements at `at`, in words.

    Args:
        agreements: the listed agreements.
        recipients: recipient name -> the agreement id it receives under.
        at: now.
    """
    warnings: list[str] = []
    for a in agreements:
        under = sorted(name for name, agreement_id in recipients.items() if agreement_id == a.id)
        who = ", ".join(under) or "no recipient"
        state = a.state(at)
        if state == "expired":
            warnings.append(f"agreement {a.id} ended {_day(a.valid_until)}: nothing is shared with {who}")
        elif state == "not_yet_valid":
            warnings.append(f"agreement {a.id} begins {_day(a.valid_from)}: nothing is shared with {who} until then")
        elif (left := a.days_left(at)) <= a.warn_before_days:
            warnings.append(
                f"agreement {a.id} ends {_day(a.valid_until)} (in {max(0, int(left))} days): renew it or "
                f"{who} will get nothing"
            )
    return warnings


def _day(value: date | datetime) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _start(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def _end(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    # Inclusive: the whole last day.
    return datetime.combine(value + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(microseconds=1)
