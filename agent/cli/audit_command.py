"""`edge-agent audit verify|show`: check and read the log of what left the box and what came back."""

from __future__ import annotations

__all__ = ["parse_since", "register"]

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.errors import AgentError
from agent.privacy.audit import read_records, verify_log

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="verify or show the audit log of sent messages",
        description="The audit log records every message that leaves the box in a hash chain.",
    )
    commands = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = commands.add_parser(
        "verify",
        help="check that no record was edited, removed or reordered",
        description="Exits 0 when the chain is intact; otherwise names the first bad record and exits 1.",
    )
    verify.add_argument("--log", required=True, type=Path, metavar="FILE", help="audit log (JSONL)")
    verify.set_defaults(handler=run_verify)
    show = commands.add_parser("show", help="print records", description="Print audit records, oldest first.")
    show.add_argument("--log", required=True, type=Path, metavar="FILE", help="audit log (JSONL)")
    show.add_argument(
        "--since",
        type=parse_since,
        default=None,
        metavar="ISO|DURATION",
        help="only records at or after this time: 2026-03-01T22:00:00Z, or a duration back from now (90s, 15m, 2h, 7d)",
    )
    show.add_argument("--json", action="store_true", help="print each record as its JSON line")
    show.set_defaults(handler=run_show)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC time from an ISO time (naive means UTC) or a duration back from now."""
    match = _DURATION.match(text.strip())
    if match:
        return (now or datetime.now(UTC)) - timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an ISO time nor a duration like 15m") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def run_verify(args: argparse.Namespace) -> int:
    if not args.log.exists():
        raise AgentError(f"audit log {args.log} does not exist")
    count, issue = verify_log(args.log)
    if issue is not None:
        print(f"{args.log}: TAMPERED: {issue} ({count} record(s) before it are intact)", file=sys.stderr)
        return 1
    print(f"{args.log}: ok: {count} record(s), hash chain intact")
    return 0


def run_show(args: argparse.Namespace) -> int:
    for rec in read_records(args.log):
        ts = rec.ts
        if args.since is not None and (ts is None or ts < args.since):
            continue
        if args.json:
            print(json.dumps(rec.data, sort_keys=True))
            continue
        d = rec.data
        if d.get("kind"):
            print(_event_line(d))
            continue
        flags = " PERSONAL-DATA" if d.get("personal_data") else ""
        flags += f" escalated-from={d['escalated_from']}" if d.get("escalated_from") else ""
        print(
            f"{d.get('seq', '?'):>6} {d.get('ts', '?')} {d.get('recipient', '?')} {d.get('topic', '?')} "
            f"alert={d.get('alert_id', '?')} sha256={str(d.get('payload_sha256', '?'))[:16]} "
            f"policy={d.get('policy_version', '?')} snapshot={d.get('snapshot', '?')}{flags}"
        )
    return 0


def _event_line(d: dict[str, Any]) -> str:
    """One line for a record that is not a sent message: a status, a rejected status, an escalation."""
    head = f"{d.get('seq', '?'):>6} {d.get('ts', '?')} {d['kind']}"
    if d["kind"] == "status":
        disposition = f" ({d['disposition']})" if d.get("disposition") else ""
        return (
            f"{head} {d.get('recipient', '?')} {d.get('status', '?')}{disposition} alert={d.get('alert_id', '?')} "
            f"incident={d.get('incident_id', '?')} since_published_s={d.get('since_published_s', '?')} "
            f"kid={d.get('kid', '?')}"
        )
    if d["kind"] == "status_rejected":
        return (
            f"{head} {d.get('recipient', '?')} level={d.get('topic_level', '?')} reason={d.get('reason', '?')} "
            f"kid={d.get('kid') or '-'} sha256={str(d.get('payload_sha256', '?'))[:16]}: {d.get('detail', '')}"
        )
    if d["kind"] == "escalation":
        return (
            f"{head} {d.get('recipient', '?')} -> {d.get('target', '?')} incident={d.get('incident_id', '?')} "
            f"alerts={len(d.get('alert_ids') or [])} messages={len(d.get('messages') or [])} "
            f"waited_s={d.get('waited_s', '?')} outcome={d.get('outcome', '?')}"
        )
    return f"{head} " + " ".join(f"{k}={v}" for k, v in sorted(d.items()) if k not in ("seq", "ts", "kind"))
