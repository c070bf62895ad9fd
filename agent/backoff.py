"""The one retry policy: capped exponential backoff with jitter.

Cameras reconnecting, a camera restarted after a crash, and the publisher
reconnecting to its broker all wait by this rule, so an operator reads one
behaviour in the logs. Jitter matters at fleet scale: hundreds of boxes that
lost the same network must not come back in step.
"""

from __future__ import annotations

__all__ = ["Backoff"]

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays before retry number `failures` (1 for the first retry).

    The base delay is `initial_s * factor ** (failures - 1)`, capped at `max_s`;
    the delay is drawn uniformly in `[base * (1 - jitter), base]`. `jitter=0`
    gives the base itself, `jitter=1` is "full jitter".

    Attributes:
        initial_s: base delay of the first retry.
        max_s: the longest base delay.
        factor: growth of the base per failure.
        jitter: fraction of the base that is random, 0 to 1.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s):
            raise ValueError(f"backoff needs 0 < initial_s <= max_s, got {self.initial_s} and {self.max_s}")
        if self.factor < 1 or not (0 <= self.jitter <= 1):
            raise ValueError(f"backoff needs factor >= 1 and jitter in [0, 1], got {self.factor} and {self.jitter}")

    def base_s(self, failures: int) -> float:
        """The delay before jitter; exponent capped so a long outage cannot overflow."""
        return min(self.max_s, self.initial_s * self.factor ** min(max(0, failures - 1), 64))

    def delay_s(self, failures: int, rng: random.Random | None = None) -> float:
        base = self.base_s(failures)
        if self.jitter == 0:
            return base
        return base * (1.0 - self.jitter * (rng or random).random())
