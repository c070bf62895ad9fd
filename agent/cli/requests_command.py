"""`edge-agent requests list|approve|refuse|revoke --config FILE`: the owner's say on break-glass requests.

A recipient's request to widen sharing for one incident that its agreement
allows, but not without the owner's approval (`break_glass.auto_grant:
false`), waits as `pending`. On the box, `approve ID` grants it from now
for the duration asked, `refuse ID` refuses it, `revoke ID` ends a grant
early; ID is the request id or its last group (what `list` shows). Each
writes the decision to the break-glass table in the outbox file, where the
running agent picks it up within a second, records it in the audit chain
(`break_glass_granted` with `granted_by: approved` and who approved it,
`break_glass_refused` with `refused_by_owner`, `break_glass_ended` with
`revoked`), notifies the owner and widens or narrows sharing. With the agent
stopped, the decision waits in the table and is recorded when it starts.
An approval is checked against the agreement as the config says now.
"""

from __future__ import annotations

__all__ = ["register"]

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from agent.alerts.ids import short_id
from agent.cli.audit_command import parse_since
from agent.cli.options import add_config_options
from agent.config import SiteConfig, load_config
from agent.delivery.break_glass_check import terms_refusal
from agent.delivery.break_glass_table import BreakGlassTable, StoredRequest
from agent.errors import AgentError

_APPLIED = "the running agent records it within a second (a stopped agent, when it starts)"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "requests",
        help="list, approve, refuse or revoke recipients' break-glass requests (on the box)",
        description=(
            "Recipients' requests to widen sharing for one incident: list them, approve or refuse one that "
            "waits for the owner, revoke a grant early. The running agent records each decision in the "
            "audit chain and applies it within a second."
        ),
    )
    actions = parser.add_subparsers(dest="requests_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="pending requests, grants in force and recent decisions")
    add_config_options(listing)
    listing.add_argument(
        "--since",
        type=parse_since,
        default=None,
        metavar="ISO|DURATION",
        help="also settled requests received since then (default: 7d): 2026-03-01T22:00:00Z, 90m, 7d",
    )
    listing.add_argument("--json", action="store_true", help="print the requests as one JSON document")
    listing.set_defaults(handler=_list)
    for name, helping, handler in (
        ("approve", "grant a pending request from now, for the duration it asked", _approve),
        ("refuse", "refuse a pending request", _refuse),
        ("revoke", "end a grant in force now", _revoke),
    ):
        action = actions.add_parser(name, help=helping)
        add_config_options(action)
        action.add_argument("request", metavar="ID", help="the request id, or its last group as `list` shows it")
        action.add_argument("--by", default=None, metavar="NAME", help="who decides (default: the login name)")
        if name == "refuse":
            action.add_argument("--reason", default="", metavar="TEXT", help="why, in words (kept in the audit chain)")
        action.set_defaults(handler=handler)


def _table(config: SiteConfig) -> BreakGlassTable:
    path = Path(config.outbox.path)
    if not path.is_file():
        raise AgentError(f"outbox {path} does not exist: the agent has not run with this config yet")
    return BreakGlassTable(path)


def _who(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)[:100]
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "owner"


def _approve(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    now = datetime.now(UTC)
    with _table(config) as table:
        stored = _pending(table, args.request, now)
        policy = config.policies.recipient(stored.recipient)
        agreement = config.policies.agreement_for(policy) if policy is not None else None
        refusal = terms_refusal(agreement, stored.recipient, stored.widen, stored.duration_s, now)
        if refusal is not None:
            raise AgentError(f"cannot approve {stored.request_id}: {refusal.detail}; refuse it instead")
        if not table.grant(stored.request_id, "approved", now, _who(args)):
            raise AgentError(f"request {stored.request_id} was decided meanwhile (see `edge-agent requests list`)")
    until = now + timedelta(seconds=stored.duration_s)
    print(
        f"approved {stored.request_id}: {stored.recipient} gets {', '.join(stored.widen)} of incident "
        f"{stored.incident_id} until {_short(until)}; {_APPLIED}"
    )
    return 0


def _refuse(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    now = datetime.now(UTC)
    with _table(config) as table:
        stored = _pending(table, args.request, now, lapsed_ok=True)
        detail = str(args.reason).strip() or "refused on the box"
        if not table.refuse(stored.request_id, "refused_by_owner", detail, "owner", now, _who(args)):
            raise AgentError(f"request {stored.request_id} was decided meanwhile (see `edge-agent requests list`)")
    print(f"refused {stored.request_id} of {stored.recipient}; {_APPLIED}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    now = datetime.now(UTC)
    with _table(config) as table:
        stored = table.find(args.request)
        if not table.revoke(stored.request_id, now, _who(args)):
            raise AgentError(f"request {stored.request_id} is not a grant in force ({_state(stored, now)})")
    print(f"revoked {stored.request_id}: {stored.recipient}'s copies of {stored.incident_id} narrow back now")
    return 0


def _pending(table: BreakGlassTable, text: str, now: datetime, *, lapsed_ok: bool = False) -> StoredRequest:
    stored = table.find(text)
    if stored.state != "pending":
        raise AgentError(f"request {stored.request_id} is not pending ({_state(stored, now)})")
    if not lapsed_ok and stored.received_utc + timedelta(seconds=stored.duration_s) <= now:
        raise AgentError(f"request {stored.request_id} lapsed: the {stored.duration_s} s it asked for are over")
    return stored


def _list(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    now = datetime.now(UTC)
    since = args.since or now - timedelta(days=7)
    with _table(config) as table:
        found = table.recent(since)
    if args.json:
        doc = {"site": config.site.id, "since": since.isoformat(), "requests": [_as_dict(r, now) for r in found]}
        print(json.dumps(doc, indent=1))
    else:
        _print(found, now, sys.stdout)
    return 0


def _state(stored: StoredRequest, now: datetime) -> str:
    """Where a request stands, in words."""
    if stored.state == "pending":
        return "pending: waiting for approve or refuse"
    if stored.state == "refused":
        return f"refused ({stored.reason})" + ("" if stored.announced else ", not yet recorded")
    if stored.revoked_utc is not None:
        return f"revoked at {_short(stored.revoked_utc)}"
    if stored.until_utc is not None and stored.until_utc <= now:
        return f"ended at {_short(stored.until_utc)}"
    if not stored.announced:
        return "granted, not yet recorded by the agent"
    return f"granted ({stored.decided_by}) until {_short(stored.until_utc)}"


def _as_dict(stored: StoredRequest, now: datetime) -> dict[str, Any]:
    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at is not None else None

    return {
        "request_id": stored.request_id,
        "recipient": stored.recipient,
        "agreement": stored.agreement,
        "incident_id": stored.incident_id,
        "widen": list(stored.widen),
        "duration_s": stored.duration_s,
        "justification": stored.justification,
        "operator": stored.operator,
        "received": iso(stored.received_utc),
        "state": stored.state,
        "standing": _state(stored, now),
        "decided_by": stored.decided_by or None,
        "decided_as": stored.decided_as or None,
        "until": iso(stored.until_utc),
        "reason": stored.reason or None,
        "revoked": iso(stored.revoked_utc),
        "active": stored.active(now),
    }


def _short(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if at is not None else "?"


def _print(found: list[StoredRequest], now: datetime, out: TextIO) -> None:
    if not found:
        print("no break-glass requests", file=out)
        return
    for r in found:
        print(
            f"{short_id(r.request_id)}  {r.recipient}  incident {short_id(r.incident_id)}  "
            f"{','.join(r.widen)} for {r.duration_s} s  received {_short(r.received_utc)}  {_state(r, now)}",
            file=out,
        )
        print(f"    by {r.operator}: {r.justification}", file=out)
