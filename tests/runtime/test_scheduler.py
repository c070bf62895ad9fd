"""The rate scheduler: full rate when the box keeps up, the same share lost by every camera when not."""

from __future__ import annotations

from agent.runtime.scheduler import RateScheduler, RateSignal

KEEPING_UP = [RateSignal(processed=25, missed=0), RateSignal(processed=50, missed=0)]
FALLING_BEHIND = [RateSignal(processed=15, missed=10), RateSignal(processed=30, missed=20)]


def run(scheduler: RateScheduler, signals: list[RateSignal], cpu: float, times: int) -> float:
    for _ in range(times):
        scale = scheduler.update(signals, cpu)
    return scale


def test_full_rate_while_the_box_keeps_up() -> None:
    scheduler = RateScheduler(0.9)
    assert run(scheduler, KEEPING_UP, 0.5, 20) == 1.0
    assert scheduler.period_s(5.0) == 0.2


def test_every_camera_loses_the_same_share_and_gets_it_back() -> None:
    scheduler = RateScheduler(0.9)
    scale = run(scheduler, FALLING_BEHIND, 0.6, 20)
    assert scale < 0.7
    # A 5 fps and a 10 fps camera are slowed by the same factor.
    assert abs(1 / scheduler.period_s(5.0) / 5.0 - 1 / scheduler.period_s(10.0) / 10.0) < 1e-9
    assert run(scheduler, KEEPING_UP, 0.3, 60) == 1.0


def test_cpu_over_budget_lowers_the_rate_even_when_cameras_keep_up() -> None:
    scheduler = RateScheduler(0.7)
    assert run(scheduler, KEEPING_UP, 0.95, 12) < 0.8
