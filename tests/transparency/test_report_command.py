"""`edge-agent transparency` as a user runs it: refuses a log that fails its chain, writes a page safe to open."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from agent.delivery.routing import OutgoingAlert
from agent.privacy.audit import AuditLog
from tests.transparency.audit_story import FORMULA_AGREEMENT, FORMULA_RECIPIENT, SCRIPT, write_story

REPO = Path(__file__).resolve().parents[2]


def edge_agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "--log-level", "error", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def report(
    log: Path, out: Path, first: str = "2026-03-02", last: str = "2026-03-15"
) -> subprocess.CompletedProcess[str]:
    return edge_agent("transparency", "--audit", str(log), "--from", first, "--to", last, "--out", str(out))


@pytest.fixture
def story(tmp_path: Path) -> Path:
    return write_story(tmp_path / "audit.jsonl")


class _Tags(HTMLParser):
    """Every start tag of a page and the attributes that could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.loads += [f"{tag} {name}={value}" for name, value in attrs if name in ("src", "href")]


def test_the_report_states_the_chain_head_and_how_to_check_it(story: Path, tmp_path: Path) -> None:
    result = report(story, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    last = json.loads(story.read_text(encoding="utf-8").splitlines()[-1])
    assert f"chain head seq {last['seq']} hash {last['hash']}" in result.stdout
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert f'<td class="n" id="head-seq">{last["seq"]}</td>' in page
    assert f'<td class="digest" id="head-hash">{last["hash"]}</td>' in page
    assert "edge-agent audit verify --log audit.jsonl" in page
    # ...and the check it names passes on the same log.
    verified = edge_agent("audit", "verify", "--log", str(story))
    assert verified.returncode == 0 and f"ok: {last['seq']} record(s)" in verified.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.csv", "report.html", "report.json"]


def test_the_page_is_self_contained_and_escapes_the_log(story: Path, tmp_path: Path) -> None:
    assert report(story, tmp_path / "out").returncode == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    tags = _Tags()
    tags.feed(page)
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "script" not in tags.tags and "link" not in tags.tags and "img" not in tags.tags
    assert tags.loads == []  # nothing to fetch
    assert "default-src 'none'" in page
    assert page.count("<svg") == 3 + 4  # a weekly plot per recipient with Actual alerts, and four bar charts
    assert "<title>2026-W10: 4</title>" in page  # police's week 10


def test_the_csv_neutralises_formulas(story: Path, tmp_path: Path) -> None:
    assert report(story, tmp_path / "out").returncode == 0
    with open(tmp_path / "out" / "report.csv", newline="", encoding="utf-8") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert "'" + FORMULA_RECIPIENT in cells and "'" + FORMULA_AGREEMENT in cells
    assert "'-x.y" in cells  # a field path from the log


def test_an_edited_record_is_refused_and_nothing_is_written(story: Path, tmp_path: Path) -> None:
    lines = story.read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, start=1) if '"break_glass_request"' in line)
    record = json.loads(lines[number - 1])
    record["justification"] = "routine check"
    lines[number - 1] = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    story.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = report(story, tmp_path / "out")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"line {number}: record {record['seq']} was edited" in result.stderr
    assert "no report written" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_log_cut_short_is_refused_and_nothing_is_written(story: Path, tmp_path: Path) -> None:
    lines = story.read_text(encoding="utf-8").splitlines()
    story.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # the .head file still names the last record
    out = tmp_path / "out"
    out.mkdir()
    result = report(story, out)
    assert result.returncode == 1
    assert f"log ends at record {len(lines) - 1} but audit.jsonl.head says {len(lines)}" in result.stderr
    assert list(out.iterdir()) == []


def test_only_records_in_the_period_are_counted(story: Path, tmp_path: Path) -> None:
    assert report(story, tmp_path / "week11", first="2026-03-09").returncode == 0
    document = json.loads((tmp_path / "week11" / "report.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in story.read_text(encoding="utf-8").splitlines()]
    assert document["records_in_period"] == sum("2026-03-09" <= r["ts"][:10] <= "2026-03-15" for r in records)
    police = next(r for r in document["rows"] if (r["recipient"], r["agreement"]) == ("police", "pd-2026"))
    assert police["shared"]["Actual"]["alerts"] == 2  # a-8 and a-10 (the period's last millisecond)
    assert police["withheld"] == {} and police["break_glass"] == [] and document["drills"] == []

    # The day after: only what happened on 16 March; the status there answers a message outside the period.
    assert report(story, tmp_path / "day", first="2026-03-16", last="2026-03-16").returncode == 0
    day = json.loads((tmp_path / "day" / "report.json").read_text(encoding="utf-8"))
    assert day["records_in_period"] == 2
    assert {(r["recipient"], r["agreement"]) for r in day["rows"]} == {("police", "pd-2026"), ("police", "unknown")}


def test_from_defaults_to_a_year_before_to(story: Path, tmp_path: Path) -> None:
    result = edge_agent("transparency", "--audit", str(story), "--to", "2026-03-15", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert document["period"] == {"from": "2025-03-15", "to": "2026-03-15"}
    assert document["log"]["records"] - document["records_in_period"] == 2  # the two records of 16 March


def test_an_older_log_counts_missing_fields_as_unknown(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "old.jsonl")
    for i in range(3):
        alert = OutgoingAlert(
            message_id=f"m-{i}",
            recipient="police",
            topic="edge/t",
            payload=b"x",
            alert_id=f"a-{i}",
            severity_rank=1,
            snapshot="faces-filled",
        )
        log.record(alert, ts=datetime(2026, 3, 4, 12, i, tzinfo=UTC))
    assert report(log.path, tmp_path / "out").returncode == 0
    document = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    [row] = document["rows"]
    assert (row["recipient"], row["agreement"]) == ("police", "unknown")
    assert row["shared"]["Actual"]["messages"] == 0
    unknown = row["shared"]["unknown"]
    assert (unknown["alerts"], unknown["snapshots"], unknown["locations"]) == (3, 3, {"unknown": 3})
    assert document["weekly_actual_alerts"] == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--from", "2026-03-16", "--to", "2026-03-01"],
            2,
            "the period starts (2026-03-16) after it ends (2026-03-01)",
        ),
        (["--from", "2026-3-1"], 2, "'2026-3-1' is not a day written YYYY-MM-DD"),
        (["--to", "2026-02-30"], 2, "'2026-02-30' is not a day: day is out of range for month"),
    ],
)
def test_bad_dates_are_refused(story: Path, tmp_path: Path, args: list[str], code: int, message: str) -> None:
    result = edge_agent("transparency", "--audit", str(story), "--out", str(tmp_path / "out"), *args)
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_log_is_named(tmp_path: Path) -> None:
    result = report(tmp_path / "none.jsonl", tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: audit log {tmp_path / 'none.jsonl'} does not exist"
