"""A damaged outbox file: refused at start with one clear error; a torn write-ahead log: losses reported.

The crash image of a running agent is its database and WAL files as they
are on disk while the connection is open (copying them is what a power cut
leaves behind); truncating the WAL copy is a write torn half-way.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.config import OutboxConfig
from agent.delivery.messages import message_id_for
from agent.delivery.outbox import Outbox
from agent.delivery.outbox_file import OutboxDamaged
from agent.delivery.reconcile import find_lost_messages, report_lost_messages
from agent.delivery.routing import OutgoingAlert
from agent.privacy.audit import AuditLog

PAGE = 4096


def outgoing_alert(n: int, size: int) -> OutgoingAlert:
    payload = f'{{"alert": {n}, "pad": "{"x" * size}"}}'.encode()
    return OutgoingAlert(
        message_id=message_id_for(payload),
        recipient="default",
        topic=f"edge/site/cam/alerts/rule/default/{n}",
        payload=payload,
        alert_id=f"alert-{n:04d}",
        severity_rank=1,
    )


def _fill(box: Outbox, audit: AuditLog, count: int, size: int = 900, start: int = 0) -> list[str]:
    ids = []
    for n in range(start, start + count):
        message = outgoing_alert(n, size=size)
        assert box.put(message.to_outbound(3600))
        audit.record(message)
        ids.append(message.message_id)
    return ids


def test_damage_in_the_middle_of_the_file_is_refused_with_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(OutboxConfig(path=path)) as box:
        _fill(box, AuditLog(tmp_path / "audit.jsonl"), 200)
    data = bytearray(path.read_bytes())
    middle = (len(data) // PAGE // 2) * PAGE
    data[middle : middle + 2 * PAGE] = b"\xa5" * (2 * PAGE)
    path.write_bytes(bytes(data))
    with pytest.raises(OutboxDamaged) as caught:
        Outbox(OutboxConfig(path=path)).open()
    message = str(caught.value)
    assert str(path) in message and "damaged" in message and "move the file aside" in message
    assert path.read_bytes() == bytes(data), "the damaged file is left as it was"


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not sqlite" * 500)
    with pytest.raises(OutboxDamaged, match=r"outbox .* is damaged"):
        Outbox(OutboxConfig(path=path)).open()


def test_the_agent_refuses_a_damaged_outbox_in_one_error_line(tmp_path: Path, vtest_avi: Path) -> None:
    outbox = tmp_path / "outbox.sqlite"
    outbox.write_bytes(b"\x00garbage" * 4096)
    config = {
        "site": {"id": "site-d", "name": "Damaged", "location": {"lat": 51.0, "lon": 0.0}},
        "cameras": [{"id": "cam", "source": str(vtest_avi)}],
        "mqtt": {"host": "127.0.0.1", "port": 1, "connect_timeout_s": 1},
        "outbox": {"path": str(outbox)},
        "signing": {"key_file": str(tmp_path / "key.pem")},
        "policies": {"pseudonym_key_file": str(tmp_path / "p.key"), "audit_log": str(tmp_path / "audit.jsonl")},
        "runtime": {"state_dir": str(tmp_path / "run")},
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode != 0
    assert len(errors) == 1 and str(outbox) in errors[0] and "damaged" in errors[0], run.stderr[-2000:]
    assert "Traceback" not in run.stderr


def test_alerts_lost_with_a_torn_wal_are_reported_against_the_audit_log(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    audit = AuditLog(tmp_path / "audit.jsonl")
    box = Outbox(OutboxConfig(path=live / "outbox.sqlite"))
    box.open()
    try:
        _fill(box, audit, 5)
        box.ack_many([m.seq for m in box.pending(limit=2)])  # two delivered: accounted for
        later = _fill(box, audit, 30, start=5)
        crash = tmp_path / "crash"
        crash.mkdir()
        for name in ("outbox.sqlite", "outbox.sqlite-wal"):
            shutil.copy(live / name, crash / name)
    finally:
        box.close()
    wal = crash / "outbox.sqlite-wal"
    wal.write_bytes(wal.read_bytes()[: wal.stat().st_size // 2])  # the tail of the log torn away

    with Outbox(OutboxConfig(path=crash / "outbox.sqlite")) as survivor:
        waiting = {m.message.message_id for m in survivor.pending(limit=1000)}
        lost = report_lost_messages(survivor, audit.path)
    assert lost, "a torn WAL loses committed messages: this crash image must lose some"
    lost_ids = [m.message_id for m in lost]
    assert set(lost_ids) <= set(later), "only messages committed after the last intact frame are lost"
    assert not set(lost_ids) & waiting
    assert len(waiting) + len(lost) == 33, "every queued message is either waiting or reported lost"


def test_nothing_is_reported_when_nothing_was_lost(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite", max_messages=10)) as box:
        _fill(box, audit, 25)  # 15 dropped by the bound: settled, not lost
        box.ack_many([m.seq for m in box.pending(limit=4)])
        assert find_lost_messages(box, audit.path) == []
