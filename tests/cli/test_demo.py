"""`make demo`'s recipient answers with `received`, and the demo reports the statuses the site verified."""

from __future__ import annotations

import json
from pathlib import Path

from agent.cli.demo import AuditTail, DemoResult, status_line, summary_status_lines
from agent.cli.demo_receiving import feedback_keys_override, recipient_status_key
from agent.config import load_config
from agent.delivery.feedback_keys import read_feedback_keys

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo.yaml"


def test_the_demo_recipient_key_is_the_one_the_site_is_given(tmp_path: Path) -> None:
    config = load_config(DEMO_CONFIG)
    recipient = config.policies.recipients[0].name
    signer, jwk = recipient_status_key(tmp_path, recipient)
    override = feedback_keys_override(DEMO_CONFIG, recipient, jwk)
    site = load_config(DEMO_CONFIG, [override])
    assert [r.name for r in site.policies.recipients] == [recipient]
    assert site.policies.recipients[0].feedback_keys == jwk
    assert list(read_feedback_keys(jwk)) == [signer.kid]
    assert signer.recipient == recipient


def test_the_override_keeps_a_listed_recipient(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("policies:\n  recipients:\n    - name: police\n      fields: [info.event]\n")
    _, jwk = recipient_status_key(tmp_path, "police")
    assert feedback_keys_override(config, "police", jwk) == f"policies.recipients.0.feedback_keys={jwk}"


def test_the_audit_tail_reads_what_was_appended_and_only_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text(json.dumps({"seq": 1}) + "\n")
    tail = AuditTail(log)
    assert tail.new_records() == []
    with log.open("a") as f:
        f.write(json.dumps({"seq": 2, "kind": "status"}) + "\n" + '{"seq": 3')
    assert tail.new_records() == [{"seq": 2, "kind": "status"}]
    with log.open("a") as f:
        f.write("}\n")
    assert tail.new_records() == [{"seq": 3}]
    assert AuditTail(tmp_path / "none.jsonl").new_records() == []


def test_the_summary_counts_statuses_back_and_their_median_time() -> None:
    statuses = [
        {"kind": "status", "status": "received", "recipient": "default", "alert_id": "a", "since_published_s": s}
        for s in (0.010, 0.040, 0.030)
    ]
    result = DemoResult(alerts=[{}] * 3, statuses=statuses)
    lines = summary_status_lines(result)
    assert lines == ["  statuses back (received, verified by the site) : 3, median 30 ms from publish to received"]
    assert "verified by the site, 10 ms after" in status_line(statuses[0])
    none_back = summary_status_lines(DemoResult(alerts=[{}]))
    assert none_back == ["  statuses back (received, verified by the site) : 0"]
    rejected = summary_status_lines(DemoResult(statuses_rejected=[{"reason": "bad_signature"}]))
    assert rejected[-1] == "  statuses the site rejected   : 1"
