"""`edge-agent incidents --config FILE`: the site's recent incidents and where each recipient stands with them.

A recipient's standing is the furthest status it sent about any alert of
the incident (received, acknowledged, verified or dismissed, dispatched,
on_scene, closed). Read from the site's audit log (every message that left, every status that
came back, every escalation) and, for a message no status answered yet, from
the outbox (still waiting, or delivered, dropped, expired, refused). Works
whether the agent runs or not; nothing is written.
"""

from __future__ import annotations

__all__ = ["register", "summarise"]

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from agent.cli.audit_command import parse_since
from agent.cli.options import add_config_options
from agent.config import SEVERITY_ORDER, load_config
from agent.delivery.feedback_history import message_states
from agent.errors import AgentError
from agent.privacy.audit import AuditRecord, read_records


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "incidents",
        help="the site's recent incidents with each recipient's latest status",
        description=(
            "List the site's recent incidents, newest first, from its audit log: the rule, severity and "
            "time span, and for each recipient the furthest status it sent back (received, acknowledged, "
            "dispatched, closed, ...), or how its message stands in the outbox, and any escalation."
        ),
    )
    add_config_options(parser)
    parser.add_argument(
        "--since",
        type=parse_since,
        default=None,
        metavar="ISO|DURATION",
        help="incidents with a message at or after this time (default: the last 24 h): 2026-03-01T22:00:00Z, 90m, 7d",
    )
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="at most N incidents (default 20)")
    parser.add_argument("--json", action="store_true", help="print the incidents as one JSON document")
    parser.set_defaults(handler=_incidents)


# How far along an incident a status is (ASAP-to-PSAP order): a recipient's standing is its furthest step.
_STEP = {"received": 0, "acknowledged": 1, "verified": 2, "dismissed": 2, "dispatched": 3, "on_scene": 4, "closed": 5}


@dataclass(slots=True)
class _Recipient:
    messages: list[str] = field(default_factory=list)
    status: dict[str, Any] | None = None
    escalated_from: str = ""


@dataclass(slots=True)
class _Incident:
    incident_id: str
    rule: str = ""
    severity: str = ""
    first: str = ""
    last: str = ""
    alerts: set[str] = field(default_factory=set)
    ended: bool = False
    recipients: dict[str, _Recipient] = field(default_factory=dict)
    escalations: list[dict[str, Any]] = field(default_factory=list)


def summarise(records: list[AuditRecord], since: datetime, outbox: Path | None = None) -> list[dict[str, Any]]:
    """The incidents of the audit records at or after `since`, newest first, as JSON-ready dicts."""
    incident_of = {
        str(r.data["alert_id"]): str(r.data["incident_id"])
        for r in records
        if r.data.get("incident_id") and r.data.get("alert_id")
    }
    incidents: dict[str, _Incident] = {}
    for rec in records:
        d, ts = rec.data, rec.ts
        if ts is None or ts < since:
            continue
        incident_id = str(d.get("incident_id") or incident_of.get(str(d.get("alert_id")), ""))
        if not incident_id or d.get("kind") not in (None, "status", "escalation"):
            continue
        inc = incidents.setdefault(incident_id, _Incident(incident_id))
        when = str(d["ts"])
        inc.first, inc.last = min(inc.first or when, when), max(inc.last, when)
        if d.get("kind") is None:
            _add_sent(inc, d)
        elif d["kind"] == "status":
            who = inc.recipients.setdefault(str(d.get("recipient")), _Recipient())
            if who.status is None or _STEP.get(str(d.get("status")), 0) >= _STEP.get(who.status["status"], 0):
                who.status = {
                    k: d[k] for k in ("status", "disposition", "operator", "ts", "since_published_s") if k in d
                }
        else:
            inc.escalations.append({k: d.get(k) for k in ("ts", "recipient", "target", "outcome", "waited_s")})
    ids = [m for inc in incidents.values() for who in inc.recipients.values() for m in who.messages]
    states = message_states(outbox, ids) if outbox is not None else {}
    ordered = sorted(incidents.values(), key=lambda i: i.last, reverse=True)
    return [_as_dict(inc, states) for inc in ordered]


def _add_sent(inc: _Incident, d: dict[str, Any]) -> None:
    inc.alerts.add(str(d.get("alert_id")))
    inc.rule = inc.rule or str(d.get("rule", ""))
    severity = str(d.get("severity", ""))
    if SEVERITY_ORDER.get(severity, -1) > SEVERITY_ORDER.get(inc.severity, -1):
        inc.severity = severity
    inc.ended = inc.ended or d.get("phase") == "end"
    who = inc.recipients.setdefault(str(d.get("recipient")), _Recipient())
    who.messages.append(str(d.get("message_id")))
    who.escalated_from = who.escalated_from or str(d.get("escalated_from", ""))


def _as_dict(inc: _Incident, states: dict[str, tuple[str, str]]) -> dict[str, Any]:
    recipients = {}
    for name, who in sorted(inc.recipients.items()):
        last = states.get(who.messages[-1]) if who.messages else None
        recipients[name] = {
            "status": who.status,
            "delivery": {"state": last[0], "at": last[1]} if last else None,
            "messages": len(who.messages),
            "escalated_from": who.escalated_from or None,
        }
    return {
        "incident_id": inc.incident_id,
        "rule": inc.rule or None,
        "severity": inc.severity or None,
        "first": inc.first,
        "last": inc.last,
        "alerts": len(inc.alerts),
        "ended": inc.ended,
        "recipients": recipients,
        "escalations": inc.escalations,
    }


def _incidents(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    log = Path(config.policies.audit_log)
    if not log.exists():
        raise AgentError(f"audit log {log} does not exist: the agent has sent nothing with this config yet")
    since = args.since or datetime.now(UTC) - timedelta(hours=24)
    found = summarise(list(read_records(log)), since, Path(config.outbox.path))[: max(0, args.limit)]
    if args.json:
        print(json.dumps({"site": config.site.id, "since": since.isoformat(), "incidents": found}, indent=1))
    else:
        _print(found, since, sys.stdout)
    return 0


def _short(ts: str | None) -> str:
    if not ts:
        return "?"
    try:
        return datetime.fromisoformat(ts).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except ValueError:
        return ts


def _print(found: list[dict[str, Any]], since: datetime, out: TextIO) -> None:
    if not found:
        print(f"no incidents since {_short(since.isoformat())}", file=out)
        return
    for inc in found:
        span = f"{_short(inc['first'])} -> {_short(inc['last'])}"
        state = "ended" if inc["ended"] else "open"
        print(
            f"incident {inc['incident_id']}  {inc['rule'] or '?'}  {inc['severity'] or '?'}  {span} ({state}), "
            f"{inc['alerts']} alert(s)",
            file=out,
        )
        for name, who in inc["recipients"].items():
            print(f"  {name:<20} {_standing(who)}", file=out)
        for esc in inc["escalations"]:
            print(
                f"  escalated {esc['recipient']} -> {esc['target']} at {_short(esc['ts'])} "
                f"after {esc['waited_s']} s without an acknowledgement ({esc['outcome']})",
                file=out,
            )


def _standing(who: dict[str, Any]) -> str:
    status, delivery = who["status"], who["delivery"]
    if status is not None:
        text = str(status["status"]) + (f" ({status['disposition']})" if status.get("disposition") else "")
        text += f" at {_short(status.get('ts'))}"
        if status.get("operator"):
            text += f" by {status['operator']}"
        if status.get("since_published_s") is not None:
            text += f", {status['since_published_s']:.1f} s after its alert was published"
    elif delivery is not None:
        text = f"no status yet; message {delivery['state']} at {_short(delivery['at'])}"
    else:
        text = "no status yet"
    if who["escalated_from"]:
        text += f" (escalated from {who['escalated_from']})"
    return text
