"""`edge-agent requests`: the owner lists waiting break-glass requests and approves, refuses or revokes them on
the box; the running agent's desk records each decision in the audit chain and applies it.

Real parts: the command line (`agent.cli.main`), the site config, signed requests, the outbox file with the
break-glass table (the command and the desk each with their own connection), the dispatcher and the chain.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.alerts.ids import short_id
from agent.cli.main import main
from agent.privacy.audit import verify_log
from tests.delivery.break_glass_site import AUTO, LAT, Desk, make_desk, notices, records


@pytest.fixture(autouse=True)
def _agent_logging_restored() -> Iterator[None]:
    """`main` configures the `agent` logger for a process; put it back for the tests after this one."""
    logger = logging.getLogger("agent")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate = saved[0], saved[1]
    logger.setLevel(saved[2])


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[Desk]:
    yield from make_desk(tmp_path, {**AUTO, "auto_grant": False})


def _pending(site: Desk) -> tuple[str, str]:
    """An incident sent to the police and its pending request's id."""
    alert = site.incidents.alert("start", 1)
    site.send(alert)
    outcome = site.ask(site.request(alert.detection.incident_id, widen=("exact_location",), duration_s=600))
    assert outcome.kind == "pending"
    return alert.detection.incident_id, outcome.request_id


def _run(site: Desk, *args: str) -> int:
    return main(["requests", *args, "--config", str(_config_file(site))])


def _config_file(site: Desk) -> Path:
    return Path(site.config.outbox.path).parent / "site.yaml"


def test_a_pending_request_is_granted_by_approve(site: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    incident, rid = _pending(site)
    assert _run(site, "list") == 0
    listed = capsys.readouterr().out
    assert short_id(rid) in listed and "pending" in listed and "armed suspect" in listed

    assert _run(site, "approve", short_id(rid), "--by", "duty-manager") == 0
    assert "approved" in capsys.readouterr().out
    now = datetime.now(UTC)
    assert site.table.widening("police", incident, now) is None  # not in force before the chain holds it
    site.desk.tick(now)
    assert site.table.widening("police", incident, now) is not None
    site.clock.at = now + timedelta(seconds=1)
    view = site.send(site.incidents.alert("update", 1))
    assert view["info"]["area"][0]["circle"].startswith(f"{LAT:.5f},")

    granted = records(site, "break_glass_granted")
    assert len(granted) == 1 and granted[0]["granted_by"] == "approved"
    assert granted[0]["approved_by"] == "duty-manager" and granted[0]["request_id"] == rid
    assert [(n.event, n.granted_by) for n in notices(site)] == [("pending", None), ("granted", "approved")]
    assert site.desk.counters().granted_approved == 1
    assert verify_log(site.audit.path)[1] is None

    assert _run(site, "approve", rid) == 1  # decided already
    assert "not pending" in capsys.readouterr().err


def test_refuse_keeps_sharing_as_it_was_and_is_recorded(site: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    incident, rid = _pending(site)
    assert _run(site, "refuse", rid, "--by", "duty-manager", "--reason", "no operational need") == 0
    site.desk.tick(datetime.now(UTC))
    refused = records(site, "break_glass_refused")
    assert [(r["reason"], r["detail"], r["refused_by"]) for r in refused] == [
        ("refused_by_owner", "no operational need", "duty-manager")
    ]
    assert site.table.widening("police", incident, datetime.now(UTC)) is None
    assert [n.event for n in notices(site)] == ["pending", "refused"]
    assert verify_log(site.audit.path)[1] is None


def test_revoke_ends_a_grant_at_once(site: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    incident, rid = _pending(site)
    assert _run(site, "approve", rid) == 0
    site.desk.tick(datetime.now(UTC))
    assert _run(site, "revoke", rid, "--by", "duty-manager") == 0
    assert site.table.widening("police", incident, datetime.now(UTC)) is None  # narrowing needs no record first
    site.desk.tick(datetime.now(UTC))
    ended = records(site, "break_glass_ended")
    assert [(e["ended"], e["revoked_by"]) for e in ended] == [("revoked", "duty-manager")]
    assert 0 <= ended[0]["duration_s"] < 600
    assert _run(site, "revoke", rid) == 1
    assert "not a grant in force" in capsys.readouterr().err
    assert verify_log(site.audit.path)[1] is None


def test_unknown_ids_and_a_site_that_never_ran_are_told_plainly(
    site: Desk, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(site, "approve", "0123456789ab") == 1
    assert "no break-glass request '0123456789ab'" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "site.yaml").write_text(_config_file(site).read_text())  # its outbox would be fresh/outbox.sqlite
    assert main(["requests", "list", "--config", str(fresh / "site.yaml")]) == 1
    assert "does not exist" in capsys.readouterr().err
