"""The `drills` section: joint-exercise scenarios that `edge-agent drill` sends as CAP `Exercise` alerts.

A scenario is a short clip played through one camera's zones and rules, its
alerts sent to some (default: every) recipient through the live delivery
path. What a scenario names must exist: its camera among `cameras`, its
recipients among `policies.recipients`, its clip on disk (relative to the
config file). A recipient whose agreement holds alerts for a verifier needs
that verifier in the same drill, or its drill alerts would wait for a
verdict nobody can give. Each problem is reported at the field that causes
it (`drills.scenarios.0.camera`), so the error names the line to change.
"""

from __future__ import annotations

__all__ = ["DrillScenario", "DrillsConfig", "DrillsSection"]

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent.config.model import ID_PATTERN, ConfigModel, require_unique

_Issue = tuple[tuple[str | int, ...], Any, str]


class DrillScenario(ConfigModel):
    """One exercise: a clip through one camera's zones and rules, to some recipients."""

    name: str = Field(pattern=ID_PATTERN, description="scenario name, as given to `edge-agent drill --scenario`")
    camera: str = Field(min_length=1, description="id of the camera whose zones and rules see the clip")
    clip: Path = Field(description="video file played as the camera's picture (relative to the config file)")
    recipients: list[str] | None = Field(
        default=None,
        min_length=1,
        description="recipient names that take part; default: every recipient",
    )
    description: str | None = Field(
        default=None, max_length=500, description="what the exercise rehearses, for the people running it"
    )

    @field_validator("clip")
    @classmethod
    def _clip_exists(cls, value: Path, info: ValidationInfo) -> Path:
        """Resolved against the config file's folder (the loader's context) and checked now, not at drill time."""
        context = info.context if isinstance(info.context, dict) else {}
        base = context.get("config_dir")
        path = Path(base) / value if base is not None and not value.is_absolute() else value
        if not path.is_file():
            raise ValueError(f"no clip at {path}")
        return path.resolve()

    @field_validator("recipients")
    @classmethod
    def _unique_recipients(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            require_unique(value, "drill recipient")
        return value


class DrillsConfig(ConfigModel):
    scenarios: list[DrillScenario] = Field(default=[], description="the exercises this site can run")

    @model_validator(mode="after")
    def _unique(self) -> DrillsConfig:
        require_unique([s.name for s in self.scenarios], "drill scenario")
        return self

    def scenario(self, name: str) -> DrillScenario | None:
        """The scenario of that name, if any."""
        return next((s for s in self.scenarios if s.name == name), None)


def _check_references(drills: DrillsConfig, info: ValidationInfo) -> DrillsConfig:
    """Cameras and recipients the scenarios name, checked against the sections validated before this one."""
    cameras = info.data.get("cameras")
    policies = info.data.get("policies")
    issues: list[_Issue] = []
    for i, scenario in enumerate(drills.scenarios):
        at = ("scenarios", i)
        if cameras is not None and scenario.camera not in {c.id for c in cameras}:
            known = ", ".join(c.id for c in cameras)
            issues.append(((*at, "camera"), scenario.camera, f"no camera {scenario.camera!r} (cameras: {known})"))
        if policies is not None:
            issues.extend(_recipient_issues(at, scenario, policies))
    if issues:
        raise ValidationError.from_exception_data(
            "DrillsConfig",
            [
                InitErrorDetails(type=PydanticCustomError("drill", "{reason}", {"reason": r}), loc=loc, input=v)
                for loc, v, r in issues
            ],
        )
    return drills


def _recipient_issues(at: tuple[str | int, ...], scenario: DrillScenario, policies: Any) -> list[_Issue]:
    names = [r.name for r in policies.recipients]
    issues: list[_Issue] = []
    taking_part = scenario.recipients if scenario.recipients is not None else names
    for j, name in enumerate(scenario.recipients or []):
        if name not in names:
            issues.append(((*at, "recipients", j), name, f"no recipient {name!r} (recipients: {', '.join(names)})"))
    for name in taking_part:
        recipient = policies.recipient(name)
        agreement = policies.agreement_for(recipient) if recipient is not None else None
        if agreement is None or agreement.verifier is None or agreement.release == "immediate":
            continue
        verifier = agreement.verifier
        if verifier not in taking_part:
            where = (*at, "recipients", scenario.recipients.index(name)) if scenario.recipients else (*at, "name")
            reason = (
                f"{name}'s alerts wait for {verifier}'s verification (agreement {agreement.id}): "
                f"add {verifier} to the drill's recipients"
            )
            issues.append((where, name, reason))
    return issues


# The field type of `SiteConfig.drills`: declared after `cameras` and `policies`, it sees them validated.
DrillsSection = Annotated[DrillsConfig, AfterValidator(_check_references)]
