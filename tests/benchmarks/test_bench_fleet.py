"""The fleet benchmark's report from a run's figures: every table, plot and headline is there.

The measurement itself is the fleet test's machinery (tests/agency/test_fleet.py runs it); here only the
report is built, from made-up figures, so nothing waits on a broker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.report import environment, write_report

pytest.importorskip("matplotlib")


def _run() -> object:
    from benchmarks.bench_fleet import QUICK, BurstRun, FleetRun, PacedRun
    from benchmarks.fleet_steps import Steps

    kinds = ("replica: store thread", "replica: MQTT thread", "broker", "PostgreSQL", "sites (this process)")
    bursts = tuple(
        BurstRun(store, n, 1000, 4.0 / n, 0.1, tuple((k, 1.0) for k in kinds), 1000, 1000)
        for store in ("SQLite", "PostgreSQL")
        for n in (1, 2)
    )
    paced = tuple(
        PacedRun(store, n, (0.002, 0.003, 0.004), (0.004, 0.005, 0.009))
        for store in ("SQLite", "PostgreSQL")
        for n in (1, 2)
    )
    steps = Steps(
        (150.0, 150.0),
        (60.0, 60.0),
        (
            ("SQLite", (90.0, 90.0), (700.0, 850.0), (230.0, 330.0)),
            ("PostgreSQL", (250.0, 500.0), (2100.0, 3400.0), (250.0, 600.0)),
        ),
        7000.0,
        1000,
    )
    return FleetRun(QUICK, bursts, paced, steps)


def test_the_report_has_throughput_latency_steps_and_plots(tmp_path: Path) -> None:
    from benchmarks.bench_fleet import section

    s = section(_run())  # type: ignore[arg-type]
    titles = [t.title for t in s.tables]
    assert any(t.startswith("Alerts stored per second") for t in titles)
    assert any(t.startswith("Publish -> stored at a steady") for t in titles)
    assert any(t.startswith("Where an alert's time goes") for t in titles)
    assert any(t.startswith("The broker alone") for t in titles)
    throughput = s.tables[0]
    assert [row[:3] for row in throughput.rows] == [
        ("SQLite", 1, "250"),
        ("SQLite", 2, "500"),
        ("PostgreSQL", 1, "250"),
        ("PostgreSQL", 2, "500"),
    ]
    assert s.notes[0].startswith("Bottleneck")
    assert {name for name, _ in s.headline} == {
        "fleet: alerts/s stored, SQLite x1 / PostgreSQL x2",
        "fleet: publish -> received p50 / p99 (PostgreSQL x2)",
    }
    report = write_report([s], environment("python -m benchmarks.bench_fleet"), tmp_path).read_text()
    assert "## Fleet: 1,000 sites into ingest replicas, SQLite and PostgreSQL" in report
    for plot in s.plots:
        assert (tmp_path / plot.file_name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
