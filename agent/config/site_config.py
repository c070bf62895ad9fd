"""The whole site config: every section, and the checks that span sections."""

from __future__ import annotations

__all__ = ["SiteConfig"]

from pydantic import Field, model_validator

from agent.config.cameras import CameraConfig
from agent.config.detectors import DetectorConfig, TrackerConfig
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

    @model_validator(mode="after")
    def _cross_checks(self) -> SiteConfig:
        require_unique([c.id for c in self.cameras], "camera")
        wanted = set(self.detector.classes)
        for cam in self.cameras:
            unknown = [c for c in cam.anchors if c not in wanted]
            if unknown:
                raise ValueError(
                    f"camera {cam.id!r} anchors name {unknown}, which detector.classes does not keep ({sorted(wanted)})"
                )
            for rule in cam.rules:
                missing = [c for c in rule.classes if c not in wanted]
                if missing:
                    raise ValueError(
                        f"camera {cam.id!r} rule {rule.name!r} counts {missing}, which "
                        f"detector.classes does not keep ({sorted(wanted)})"
                    )
        return self
