"""Alert rules: geometry kernels, rule state machines and the events they emit."""

from agent.rules.crossing import LineCrossingRule
from agent.rules.crowding import CrowdingRule
from agent.rules.intrusion import ZoneIntrusionRule
from agent.rules.loitering import LoiteringRule
from agent.rules.occupancy import ZoneOccupancy
from agent.rules.ruleset import RuleSet, build_rules
from agent.rules.schedule import Schedule
from agent.values.rule_events import RuleEvent

__all__ = [
    "CrowdingRule",
    "LineCrossingRule",
    "LoiteringRule",
    "RuleEvent",
    "RuleSet",
    "Schedule",
    "ZoneIntrusionRule",
    "ZoneOccupancy",
    "build_rules",
]
