"""The whole site config: every section, and the checks that span sections.

A check that spans sections reports at the field it is about
(`cameras.0.detect_fps`), not at the top of the file, so its error names the
line to change.
"""

from __future__ import annotations

__all__ = ["SiteConfig"]

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent.config.cameras import CameraConfig
from agent.config.detectors import DetectorConfig, TrackerConfig
from agent.config.drills import DrillsConfig, DrillsSection
from agent.config.messaging import MqttConfig, OutboxConfig, SigningConfig
from agent.config.model import ConfigModel, require_unique
from agent.config.operations import RuntimeConfig
from agent.config.policies import PoliciesConfig
from agent.config.site_info import SiteInfo


class SiteConfig(ConfigModel):
    site: SiteInfo = Field(description="where this box is")
    cameras: list[CameraConfig] = Field(min_length=1, description="the site's cameras")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="object detector")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="object tracker")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="broker connection")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="durable queue of alerts")
    policies: PoliciesConfig = Field(default_factory=PoliciesConfig, description="who receives what")
    signing: SigningConfig = Field(default_factory=SigningConfig, description="alert signing key")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="service operation")
    # After cameras and policies: its check of the cameras and recipients it names sees them validated.
    drills: DrillsSection = Field(default_factory=DrillsConfig, description="joint-exercise scenarios")

    @model_validator(mode="after")
    def _cross_checks(self) -> SiteConfig:
        require_unique([c.id for c in self.cameras], "camera")
        wanted = set(self.detector.classes)
        issues = [
            issue
            for i, cam in enumerate(self.cameras)
            for issue in _camera_issues(("cameras", i), cam, wanted, self.runtime.stall_timeout_s)
        ]
        if issues:
            raise _located(issues)
        return self


_Issue = tuple[tuple[str | int, ...], object, str]


def _camera_issues(at: tuple[str | int, ...], cam: CameraConfig, wanted: set[str], stall_s: float) -> list[_Issue]:
    """What in one camera disagrees with the detector's classes or the runtime's stall timeout."""
    issues: list[_Issue] = []
    kept = f"which detector.classes does not keep ({sorted(wanted)})"
    # The camera loop reports progress once a frame: slower than the stall timeout, it looks stalled.
    if 1.0 / cam.detect_fps >= stall_s:
        reason = (
            f"{cam.detect_fps:g} fps is one frame every {1.0 / cam.detect_fps:g} s, not less than "
            f"runtime.stall_timeout_s ({stall_s:g} s): the camera would be reported stalled between frames"
        )
        issues.append(((*at, "detect_fps"), cam.detect_fps, reason))
    unknown = [c for c in cam.anchors if c not in wanted]
    if unknown:
        issues.append(((*at, "anchors"), cam.anchors, f"anchors name {unknown}, {kept}"))
    unknown = [c for c in cam.filters.min_score if c not in wanted]
    if unknown:
        issues.append(((*at, "filters", "min_score"), cam.filters.min_score, f"min_score names {unknown}, {kept}"))
    for j, rule in enumerate(cam.rules):
        missing = [c for c in rule.classes if c not in wanted]
        if missing:
            issues.append(((*at, "rules", j, "classes"), rule.classes, f"rule {rule.name!r} counts {missing}, {kept}"))
    return issues


def _located(issues: list[_Issue]) -> ValidationError:
    """One validation error per (field path, value, reason), each at its own field."""
    return ValidationError.from_exception_data(
        "SiteConfig",
        [
            InitErrorDetails(
                type=PydanticCustomError("cross_section", "{reason}", {"reason": reason}), loc=loc, input=value
            )
            for loc, value, reason in issues
        ],
    )
