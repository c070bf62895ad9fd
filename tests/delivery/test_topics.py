"""Topic builders keep every topic under <prefix>/<site> with valid levels."""

from __future__ import annotations

import pytest

from agent.delivery.topics import alert_filter, alert_topic, stats_topic, status_topic
from agent.errors import ConfigError


def test_topic_layout() -> None:
    assert alert_topic("pub/safety", "s1", "cam-1", "yard") == "pub/safety/s1/cam-1/alerts/yard"
    assert alert_topic("edge", "s1", "cam-1", "yard", "police") == "edge/s1/cam-1/alerts/yard/police"
    assert status_topic("edge", "s1") == "edge/s1/status"
    assert stats_topic("edge", "s1") == "edge/s1/stats"
    assert alert_filter("edge") == "edge/+/+/alerts/#"


@pytest.mark.parametrize("level", ["", "a/b", "a+", "#", "x\x00"])
def test_bad_levels_are_refused(level: str) -> None:
    with pytest.raises(ConfigError):
        alert_topic("edge", "s1", level, "yard")
