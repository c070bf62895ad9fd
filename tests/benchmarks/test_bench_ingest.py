"""The ingest benchmark's quick run against a real Mosquitto: every table, plot and headline is there.

Nothing here checks a time: only that each measurement ran and reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.report import Table, environment, write_report

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.broker


def test_quick_run_reports_ingest_latency_and_console_reads(tmp_path: Path) -> None:
    from benchmarks.bench_ingest import collect

    section = collect(quick=True)
    assert section.error is None and section.key == "ingest"

    def table(start: str) -> Table:
        found = [t for t in section.tables if t.title.startswith(start)]
        assert len(found) == 1, (start, [t.title for t in section.tables])
        return found[0]

    for start in ("Ingest throughput", "Where an alert's time goes", "Publish -> stored at a steady 20 alerts/s"):
        table(start)
    assert all(t.rows for t in section.tables)
    assert table("Console store: 10,000 alerts").rows
    throughput = dict(table("Ingest throughput").rows)
    assert throughput["rejected or duplicate messages (whole run)"] == "0"
    assert "alerts/s" in str(throughput["first publish -> all rows stored"])
    steps = [row[0] for row in table("Where an alert's time goes").rows]
    assert any("add_alert" in s for s in steps) and any("AlertVerifier.check" in s for s in steps)
    queries = {row[0]: row for row in table("Console queries with 10,000 alerts").rows}
    assert {"queue", "incident", "incident_alerts", "search site", "sites", "changed_incidents"} <= set(queries)
    assert all(row[4] for row in queries.values())  # each query's SQLite plan
    pages = [t for t in section.tables if t.title.startswith("Console pages")]
    assert pages or any(n.startswith("No console page times") for n in section.notes)
    assert {name for name, _ in section.headline} >= {"publish -> row p50 / p99", "publish -> received p50 / p99"}

    report = write_report([section], environment("python -m benchmarks.bench_ingest --quick"), tmp_path).read_text()
    assert "## Receiving side: ingest throughput, publish to row, console pages" in report
    for plot in section.plots:
        assert all(values for _, values in plot.series), plot.file_name
        assert (tmp_path / plot.file_name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
