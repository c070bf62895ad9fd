"""Site configuration: the pydantic schema and the YAML loader that reports errors by line."""

from agent.config.loader import apply_overrides, load_config
from agent.config.schema import (
    CameraConfig,
    DetectorConfig,
    IntrusionRuleConfig,
    MqttConfig,
    OutboxConfig,
    PoliciesConfig,
    RecipientPolicy,
    SiteConfig,
    SiteInfo,
    ZoneConfig,
)

__all__ = [
    "CameraConfig",
    "DetectorConfig",
    "IntrusionRuleConfig",
    "MqttConfig",
    "OutboxConfig",
    "PoliciesConfig",
    "RecipientPolicy",
    "SiteConfig",
    "SiteInfo",
    "ZoneConfig",
    "apply_overrides",
    "load_config",
]
