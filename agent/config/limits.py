"""What the stages can run: the one source of each bound that a config field and a stage's settings share.

A config section bounds its field with a `Bound` here
(`Annotated[int, PIXEL_THRESHOLD.interval()]`) and the stage's settings check
the same `Bound` when they are built, so a value `edge-agent validate`
accepts is one the stage runs, and a value the stage would refuse is
reported by `validate` with its file, line and field instead of failing on a
camera thread. The module imports nothing of the agent.

Rates and durations have documented minimums for the same reason: below
them the running agent cannot do what the value asks (a wait of 1e300 s, a
connection attempt shorter than a round trip).
"""

from __future__ import annotations

__all__ = [
    "ASPECT_RATIO",
    "CONFIRM_FRAMES",
    "DETECT_FPS",
    "IDLE_AFTER_S",
    "MAX_AREA_FRACTION",
    "MIN_AREA_FRACTION",
    "MIN_REGION_FRACTION",
    "MIN_STATS_INTERVAL_S",
    "MOTION_FRAME_HEIGHT_PX",
    "MOTION_LEARNING_RATE",
    "MOTION_MODES",
    "MQTT_CONNECT_TIMEOUT_S",
    "PIXEL_THRESHOLD",
    "REGIONS_MAX_AREA",
    "REGIONS_MAX_COUNT",
    "REGIONS_PAD_PX",
    "SCORE",
    "TRACK_MAX_LOST_S",
    "Bound",
    "MotionMode",
]

from dataclasses import dataclass
from typing import Literal

from annotated_types import Interval


@dataclass(frozen=True, slots=True)
class Bound:
    """An interval of accepted numbers; each end closed unless marked open.

    Attributes:
        low: the smallest accepted value (or the one just below it, when `low_open`).
        high: the largest accepted value (or the one just above it, when `high_open`).
        low_open: `low` itself is refused.
        high_open: `high` itself is refused.
    """

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def interval(self) -> Interval:
        """The bound as type metadata (`Annotated[float, bound.interval()]`), which pydantic enforces."""
        return Interval(
            gt=self.low if self.low_open else None,
            ge=None if self.low_open else self.low,
            lt=self.high if self.high_open else None,
            le=None if self.high_open else self.high,
        )

    def contains(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def check(self, name: str, value: float) -> None:
        """Raise when `value` is outside the bound.

        Raises:
            ValueError: naming `name`, the interval and the value.
        """
        if not self.contains(value):
            raise ValueError(f"{name} must be in {self}, got {value}")

    def __str__(self) -> str:
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


# Motion gate. `always` runs the detector on every frame; `on_motion` only on frames with motion;
# `regions` as on_motion, but on crops around the motion when little of the frame moves.
MotionMode = Literal["always", "on_motion", "regions"]
MOTION_MODES: tuple[str, ...] = ("always", "on_motion", "regions")
# Below 60 px a person at a distance is a pixel or two; above 1080 costs more than it finds.
MOTION_FRAME_HEIGHT_PX = Bound(60, 1080)
# A luma difference is at most 255, so a threshold of 255 would never see motion.
PIXEL_THRESHOLD = Bound(1, 254)
# 1 is plain frame differencing (the background is the last frame); 0 would never learn.
MOTION_LEARNING_RATE = Bound(0, 1, low_open=True)
MIN_REGION_FRACTION = Bound(0, 1)
# Share of the frame motion may cover before `regions` looks at the whole frame instead; 0 would never crop.
REGIONS_MAX_AREA = Bound(0, 1, low_open=True)
# Crops per frame before the whole frame is cheaper: each crop is one inference at the model's input size.
REGIONS_MAX_COUNT = Bound(1, 16)
# Context kept around a motion box, in frame pixels (a walker's box from motion misses limbs and head).
REGIONS_PAD_PX = Bound(0, 256)
# A camera is idle after this long without motion or tracks; under a second it would flap with every pause.
IDLE_AFTER_S = Bound(1, 3600)

# Object filter.
MIN_AREA_FRACTION = Bound(0, 1)
MAX_AREA_FRACTION = Bound(0, 1, low_open=True)
# Width / height of a box; 0 would keep nothing, and beyond 100:1 no detector draws a box.
ASPECT_RATIO = Bound(0, 100, low_open=True)
CONFIRM_FRAMES = Bound(1, 100)
SCORE = Bound(0, 1)

# Rates and durations. 0.1 fps is one frame every 10 s: slower than that, a camera is better off disabled.
DETECT_FPS = Bound(0.1, 60)
# A track kept for less than a tenth of a second is dropped the first frame it is missed at any rate.
TRACK_MAX_LOST_S = Bound(0.1, 600)
# A CONNACK (with TLS) takes at least a round trip and a handshake.
MQTT_CONNECT_TIMEOUT_S = Bound(0.5, 300)
# Stats are published from the monitor's loop, which runs once a second: a shorter interval cannot be kept.
MIN_STATS_INTERVAL_S = 1.0
