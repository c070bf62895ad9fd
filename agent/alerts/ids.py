"""Time-ordered message and incident ids (UUIDv7, RFC 9562).

The standard library gains `uuid.uuid7` only in Python 3.14, and the
third-party packages draw their random bits from the OS, which would make
two replays of the same clip produce different ids. `Uuid7Factory` takes the
time from the caller and its random bits from a seedable generator: live
runs seed from the OS, replays from the camera id, so replays repeat exactly.
"""

from __future__ import annotations

__all__ = ["Uuid7Factory", "short_id"]

import random
import uuid
from datetime import datetime


class Uuid7Factory:
    """Makes UUIDv7 strings for given times.

    Args:
        seed: None for OS randomness; any string for a repeatable sequence.
    """

    def __init__(self, seed: str | None = None) -> None:
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()

    def new(self, at: datetime) -> str:
        ms = int(at.timestamp() * 1000) & ((1 << 48) - 1)
        rand_a = self._rng.getrandbits(12)
        rand_b = self._rng.getrandbits(62)
        value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
        return str(uuid.UUID(int=value))


def short_id(value: str) -> str:
    """The last 12 hex digits of an id: what a person reads to tell two incidents apart.

    A UUIDv7 begins with its millisecond timestamp, so incidents opened close together
    share their first characters; the tail is random.
    """
    return value.replace("-", "")[-12:]
