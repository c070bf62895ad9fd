"""Audit log: hash chain, tamper detection, concurrent writers, torn writes, CLI."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.cli import audit_command as audit_cli
from agent.delivery.routing import OutgoingAlert
from agent.privacy.audit import AuditLog, verify_log

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


def message(i: int, recipient: str = "police-dispatch", personal: bool = False) -> OutgoingAlert:
    return OutgoingAlert(
        message_id=f"alert-{i}/{recipient}",
        recipient=recipient,
        topic=f"edge/s/cam-x/alerts/yard/{recipient}",
        payload=f"payload {i}".encode(),
        alert_id=f"alert-{i}",
        severity_rank=1,
        policy_version="p-1",
        snapshot="unredacted" if personal else "none",
        personal_data=personal,
    )


def write_log(path: Path, n: int) -> list[str]:
    log = AuditLog(path)
    for i in range(n):
        log.record(message(i, personal=(i == 2)), ts=T0 + timedelta(minutes=i))
    return path.read_text().splitlines()


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    audit_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.handler(args))


def test_records_chain_and_carry_what_left(tmp_path: Path) -> None:
    lines = write_log(tmp_path / "audit.jsonl", 4)
    recs = [json.loads(line) for line in lines]
    assert [r["seq"] for r in recs] == [1, 2, 3, 4]
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(recs))
    assert recs[0]["payload_sha256"] == hashlib.sha256(b"payload 0").hexdigest()
    assert recs[2]["personal_data"] is True and recs[2]["snapshot"] == "unredacted"
    assert {"ts", "recipient", "topic", "alert_id", "payload_sha256", "policy_version"} <= set(recs[0])
    assert verify_log(tmp_path / "audit.jsonl") == (4, None)


@pytest.mark.parametrize(
    ("tamper", "bad_line"),
    [
        ("edit", 3),
        ("remove", 3),
        ("reorder", 2),
        ("truncate_tail", 0),
    ],
)
def test_verify_names_the_first_bad_record(
    tmp_path: Path, tamper: str, bad_line: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 5)
    if tamper == "edit":
        rec = json.loads(lines[2])
        rec["recipient"] = "someone-else"
        lines[2] = json.dumps(rec, sort_keys=True, separators=(",", ":"))
    elif tamper == "remove":
        del lines[2]
    elif tamper == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    else:
        lines = lines[:-1]
    path.write_text("\n".join(lines) + "\n")
    _count, issue = verify_log(path)
    assert issue is not None and issue.line == bad_line
    assert cli("audit", "verify", "--log", str(path)) == 1
    err = capsys.readouterr().err
    assert "TAMPERED" in err and (f"line {bad_line}" in err if bad_line else "removed from the end" in err)


def test_cli_verify_ok_and_show_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 4)
    assert cli("audit", "verify", "--log", str(path)) == 0
    assert "4 record(s)" in capsys.readouterr().out
    assert cli("audit", "show", "--log", str(path), "--since", "2026-03-01T22:02:00Z") == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["3", "4"] and "PERSONAL-DATA" in out[0]
    AuditLog(path).record(message(99))  # now
    assert cli("audit", "show", "--log", str(path), "--since", "1h") == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["5"]
    since = audit_cli.parse_since("15m", now=T0)
    assert since == T0 - timedelta(minutes=15)


def _append_many(path: str, worker: int) -> None:
    log = AuditLog(Path(path))
    for i in range(25):
        log.record(message(worker * 100 + i, recipient=f"r{worker}"))


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert all(p.exitcode == 0 for p in procs)
    assert verify_log(path) == (75, None)


def test_torn_last_line_is_reported_then_repaired_on_append(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    with open(path, "ab") as f:
        f.write(b'{"seq":4,"ts":"2026-')  # power cut mid-write
    count, issue = verify_log(path)
    assert count == 3 and issue is not None and issue.line == 4
    rec = AuditLog(path).record(message(9))
    assert rec["seq"] == 4 and rec["repaired_torn_tail_bytes"] == len(b'{"seq":4,"ts":"2026-')
    assert verify_log(path) == (4, None)
