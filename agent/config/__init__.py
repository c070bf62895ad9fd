"""Site configuration: one pydantic model per section and the YAML loader that reports errors by line.

Import the models from here (`from agent.config import CameraConfig`); each
section lives in its own module.
"""

from agent.config.cameras import Anchor, CameraConfig, MotionConfig, ObjectFilterConfig
from agent.config.detectors import DetectorConfig, TrackerConfig
from agent.config.loader import apply_overrides, load_config
from agent.config.messaging import MqttConfig, MqttTlsConfig, OutboxConfig, SigningConfig
from agent.config.model import ID_PATTERN, SEVERITY_ORDER, ConfigModel, Severity
from agent.config.operations import MetricsConfig, RuntimeConfig
from agent.config.policies import (
    FaceDetectorConfig,
    PoliciesConfig,
    RecipientPolicy,
    SnapshotPolicy,
)
from agent.config.rule_configs import (
    RULE_KINDS,
    CrowdingRuleConfig,
    Direction,
    IntrusionRuleConfig,
    LineCrossingRuleConfig,
    LineRuleConfig,
    LoiteringRuleConfig,
    RuleConfig,
    WrongWayRuleConfig,
    ZoneRuleConfig,
)
from agent.config.schedules import WEEKDAYS, ScheduleConfig, ScheduleWindow, Weekday
from agent.config.site_config import SiteConfig
from agent.config.site_info import Location, SiteInfo
from agent.config.zones import LineConfig, MaskConfig, Point, Units, ZoneConfig

__all__ = [
    "ID_PATTERN",
    "RULE_KINDS",
    "SEVERITY_ORDER",
    "WEEKDAYS",
    "Anchor",
    "CameraConfig",
    "ConfigModel",
    "CrowdingRuleConfig",
    "DetectorConfig",
    "Direction",
    "FaceDetectorConfig",
    "IntrusionRuleConfig",
    "LineConfig",
    "LineCrossingRuleConfig",
    "LineRuleConfig",
    "Location",
    "LoiteringRuleConfig",
    "MaskConfig",
    "MetricsConfig",
    "MotionConfig",
    "MqttConfig",
    "MqttTlsConfig",
    "ObjectFilterConfig",
    "OutboxConfig",
    "Point",
    "PoliciesConfig",
    "RecipientPolicy",
    "RuleConfig",
    "RuntimeConfig",
    "ScheduleConfig",
    "ScheduleWindow",
    "Severity",
    "SigningConfig",
    "SiteConfig",
    "SiteInfo",
    "SnapshotPolicy",
    "TrackerConfig",
    "Units",
    "Weekday",
    "WrongWayRuleConfig",
    "ZoneConfig",
    "ZoneRuleConfig",
    "apply_overrides",
    "load_config",
]
