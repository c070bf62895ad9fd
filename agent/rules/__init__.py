"""Alert rules: geometry kernels, rule state machines and the events they emit."""

from agent.rules.events import RuleEvent
from agent.rules.intrusion import ZoneIntrusionRule

__all__ = ["RuleEvent", "ZoneIntrusionRule"]
