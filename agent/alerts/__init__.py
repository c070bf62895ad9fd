"""Alerts: the published schema, time-ordered ids, and the builder from rule events."""

from agent.alerts.schema import SCHEMA_VERSION, Alert, AlertArea, AlertInfo, DetectionDetails

__all__ = ["SCHEMA_VERSION", "Alert", "AlertArea", "AlertInfo", "DetectionDetails"]
