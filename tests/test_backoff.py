"""The one retry policy: exponential, capped, jittered within its stated band."""

from __future__ import annotations

import random

import pytest

from agent.backoff import Backoff


@pytest.mark.parametrize(
    ("failures", "base_s"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (10_000, 30.0), (0, 0.5)],
)
def test_base_grows_by_factor_and_stops_at_the_cap(failures: int, base_s: float) -> None:
    backoff = Backoff(initial_s=0.5, max_s=30.0, factor=2.0, jitter=0.0)
    assert backoff.base_s(failures) == base_s
    assert backoff.delay_s(failures) == base_s


@pytest.mark.parametrize("jitter", [0.25, 0.5, 1.0])
def test_jittered_delays_stay_in_their_band_and_spread(jitter: float) -> None:
    backoff = Backoff(initial_s=1.0, max_s=8.0, jitter=jitter)
    rng = random.Random(7)
    delays = [backoff.delay_s(4, rng) for _ in range(2000)]
    assert all(8.0 * (1 - jitter) <= d <= 8.0 for d in delays)
    assert max(delays) - min(delays) > 0.9 * 8.0 * jitter  # boxes that failed together do not retry together


def test_same_seed_gives_the_same_delays() -> None:
    backoff = Backoff()
    first = [backoff.delay_s(n, random.Random(3)) for n in range(1, 8)]
    assert first == [backoff.delay_s(n, random.Random(3)) for n in range(1, 8)]


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_s": 0.0}, {"initial_s": 5.0, "max_s": 1.0}, {"factor": 0.5}, {"jitter": 1.5}, {"jitter": -0.1}],
)
def test_settings_that_make_no_sense_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(**kwargs)
