"""The report's figures equal a count done here straight over the log's JSON lines."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent.transparency import Period, write_report
from tests.transparency.audit_story import FIRST, LAST, write_story

CLASSES = ("Actual", "Exercise", "Test", "unknown")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_story(tmp_path_factory.mktemp("story") / "audit.jsonl")


@pytest.fixture(scope="module")
def report(story: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report(story, Period(FIRST, LAST), out)
    return out


def in_period(log: Path, first: date, last: date) -> list[dict[str, Any]]:
    """The log's records whose `ts` falls on a day from `first` to `last` (the date is the first ten characters)."""
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return [r for r in records if first.isoformat() <= r["ts"][:10] <= last.isoformat()]


def key(r: dict[str, Any]) -> tuple[str, str]:
    return r["recipient"], r.get("agreement", "unknown")


def rows_by_key(report: Path) -> dict[tuple[str, str], dict[str, Any]]:
    document = json.loads((report / "report.json").read_text(encoding="utf-8"))
    return {(row["recipient"], row["agreement"]): row for row in document["rows"]}


def test_shared_counts_per_class_match_the_log(story: Path, report: Path) -> None:
    sent = [r for r in in_period(story, FIRST, LAST) if "message_id" in r]
    rows = rows_by_key(report)
    for cls in CLASSES:
        mine = [r for r in sent if r.get("cap_status", "unknown") == cls]
        messages = Counter(key(r) for r in mine)
        alerts = Counter(k for k, _ in {(key(r), r["alert_id"]) for r in mine})
        pictures = Counter(key(r) for r in mine if r["snapshot"] in ("faces-filled", "unredacted"))
        personal = Counter(key(r) for r in mine if r["personal_data"])
        assert messages, f"the story has {cls} messages"
        for k, row in rows.items():
            shared = row["shared"][cls]
            assert shared["messages"] == messages[k], (cls, k)
            assert shared["alerts"] == alerts[k], (cls, k)
            assert shared["snapshots"] == pictures[k], (cls, k)
            assert shared["personal_data"] == personal[k], (cls, k)
        assert set(messages) <= set(rows)


def test_exercise_and_test_stay_out_of_the_actual_figures(report: Path) -> None:
    police = rows_by_key(report)[("police", "pd-2026")]
    assert "e-1" not in json.dumps(police["shared"]["Actual"])  # alert ids are not listed, but counts are:
    assert police["shared"]["Actual"]["alerts"] == 6  # a-1, a-2, a-5, a-6, a-8, a-10
    assert police["shared"]["Exercise"]["alerts"] == 1 and police["shared"]["Test"]["alerts"] == 1
    assert police["drills"] == [{"drill_id": "d-1", "alerts": 1, "messages": 1}]
    assert police["acknowledgement"]["Exercise"]["received_median_s"] == 5.0
    assert rows_by_key(report)[("police", "unknown")]["shared"]["unknown"]["messages"] == 1  # the older record


def test_data_types_and_fields_match_the_log(story: Path, report: Path) -> None:
    actual = [r for r in in_period(story, FIRST, LAST) if "message_id" in r and r.get("cap_status") == "Actual"]
    rows = rows_by_key(report)
    fields: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for r in actual:
        fields[key(r)].update(r["shared_fields"])
    locations = Counter((key(r), r["location"]) for r in actual)
    releases = Counter((key(r), r["release"]) for r in actual)
    for k, row in rows.items():
        shared = row["shared"]["Actual"]
        assert shared["fields"] == sorted(fields[k])
        assert shared["locations"] == {loc: n for (kk, loc), n in locations.items() if kk == k}
        assert shared["releases"] == {rel: n for (kk, rel), n in releases.items() if kk == k}
    assert rows[("police", "pd-2026")]["shared"]["Actual"]["widened"] == 1
    assert rows[("firm", "firm-1")]["shared"]["Actual"]["escalated"] == 1


def test_withheld_held_and_released_match_the_log(story: Path, report: Path) -> None:
    records = in_period(story, FIRST, LAST)
    withheld = Counter((key(r), r["reason"]) for r in records if r.get("kind") == "withheld")
    held = Counter(key(r) for r in records if r.get("kind") == "held")
    released = Counter((key(r), r["by"]) for r in records if r.get("kind") == "released")
    assert {reason for _, reason in withheld} == {"agreement_expired", "agreement_not_yet_valid", "dismissed"}
    for k, row in rows_by_key(report).items():
        assert row["withheld"] == {reason: n for (kk, reason), n in withheld.items() if kk == k}
        assert row["held"] == held[k]
        assert row["released"] == {by: n for (kk, by), n in released.items() if kk == k}


def test_break_glass_requests_carry_their_outcome_and_duration(story: Path, report: Path) -> None:
    records = [r for r in in_period(story, FIRST, LAST) if r.get("kind", "").startswith("break_glass")]
    expected: dict[str, dict[str, Any]] = {}
    for r in records:
        entry = expected.setdefault(r["request_id"], {"outcome": "pending", "lasted": None})
        if r["kind"] == "break_glass_request":
            entry["justification"] = r["justification"]
        elif r["kind"] == "break_glass_granted":
            entry["outcome"] = {"automatic": "granted automatically", "approved": "approved"}[r["granted_by"]]
        elif r["kind"] == "break_glass_refused":
            entry["outcome"] = "refused"
        else:
            entry["lasted"] = (r["ended"], r["duration_s"])
    uses = rows_by_key(report)[("police", "pd-2026")]["break_glass"]
    got = {
        u["request_id"]: {
            "outcome": u["outcome"],
            "justification": u["justification"],
            "lasted": None if u["ended"] is None else (u["ended"], u["actual_duration_s"]),
        }
        for u in uses
    }
    assert got == expected
    assert [u["outcome"] for u in uses] == ["granted automatically", "refused", "approved"]


def test_acknowledgement_times_are_of_each_alerts_first_answer(report: Path) -> None:
    police = rows_by_key(report)[("police", "pd-2026")]["acknowledgement"]["Actual"]
    # received: a-1 2 s, a-2 3 s, a-8 4 s; answered first: a-1 30 s (not 99), a-2 60 s (verified before dispatched).
    # p90 by linear interpolation: 3 + 0.8 * (4 - 3) and 30 + 0.9 * (60 - 30). a-8's answer is on 16 March.
    assert police["received"] == 3 and police["received_median_s"] == 3.0
    assert police["received_p90_s"] == pytest.approx(3.8)
    assert police["acknowledged"] == 2 and police["acknowledged_median_s"] == 45.0
    assert police["acknowledged_p90_s"] == pytest.approx(57.0)
    firm = rows_by_key(report)[("firm", "firm-1")]["acknowledgement"]["Actual"]
    assert (firm["received_median_s"], firm["acknowledged_median_s"]) == (1.5, 40.0)


def test_period_size_kinds_and_chain_head_match_the_log(story: Path, report: Path) -> None:
    lines = story.read_text(encoding="utf-8").splitlines()
    records = in_period(story, FIRST, LAST)
    document = json.loads((report / "report.json").read_text(encoding="utf-8"))
    last = json.loads(lines[-1])
    assert document["period"] == {"from": "2026-03-02", "to": "2026-03-15"}
    assert document["log"]["records"] == len(lines)
    assert document["log"]["head"] == {"seq": last["seq"], "hash": last["hash"]}
    assert document["records_in_period"] == len(records) == len(lines) - 3
    assert document["records_by_kind"] == dict(Counter(r.get("kind", "message") for r in records))
    assert {d["drill_id"]: (d["alerts"], d["messages"]) for d in document["drills"]} == {"d-1": (1, 2)}


def test_weekly_alerts_match_the_log(story: Path, report: Path) -> None:
    weeks: defaultdict[str, set[str]] = defaultdict(set)
    for r in in_period(story, FIRST, LAST):
        if r.get("recipient") == "police" and r.get("cap_status") == "Actual":
            year, week, _ = date.fromisoformat(r["ts"][:10]).isocalendar()
            weeks[f"{year}-W{week:02d}"].add(r["alert_id"])
    document = json.loads((report / "report.json").read_text(encoding="utf-8"))
    [police] = [w for w in document["weekly_actual_alerts"] if w["recipient"] == "police"]
    assert police["weeks"] == {week: len(ids) for week, ids in sorted(weeks.items())} == {"2026-W10": 4, "2026-W11": 2}


def test_the_csv_has_the_same_figures(report: Path) -> None:
    with open(report / "report.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    rows = rows_by_key(report)
    assert len(table) == len(rows)
    for line in table:
        row = rows[(line["recipient"].removeprefix("'"), line["agreement"].removeprefix("'"))]
        for cls in CLASSES:
            assert int(line[f"{cls.lower()}_alerts"]) == row["shared"][cls]["alerts"]
            assert int(line[f"{cls.lower()}_messages"]) == row["shared"][cls]["messages"]
        assert int(line["withheld_dismissed"]) == row["withheld"].get("dismissed", 0)
        assert int(line["break_glass_requests"]) == len(row["break_glass"])
    police = next(line for line in table if (line["recipient"], line["agreement"]) == ("police", "pd-2026"))
    assert (police["actual_received_median_s"], police["actual_acknowledged_p90_s"]) == ("3.000", "57.000")
    assert (police["break_glass_granted_automatically"], police["break_glass_refused"]) == ("1", "1")
