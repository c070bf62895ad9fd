"""`edge-agent status-send`: send one signed status about an alert back to the site that sent it.

The status (`acknowledged`, `verified`, `dismissed`, `dispatched`,
`on_scene`, `closed` with `--disposition`, or `received`) is signed with the
recipient's Ed25519 key (`--key`; the site lists its public JWK for this
recipient) and published QoS 1 on `<prefix>/<site>/feedback/<recipient>`.
Exit status 0 once the broker has acknowledged it; 1 when the broker is
unreachable or refuses it (its ACL, the connection); 2 for a value the
status schema refuses.
"""

from __future__ import annotations

__all__ = ["register"]

import argparse
import sys
from pathlib import Path
from typing import Any

from agent.agency.status_sender import StatusSigner, send_once
from agent.alerts.status import DISPOSITIONS, STATUS_KINDS
from agent.cli.subscribe_command import add_broker_options, connection_options
from agent.errors import AgentError

EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "status-send", help="send a signed status about an alert back to its site (recipient side)", description=__doc__
    )
    add_broker_options(p)
    p.add_argument("--key", type=Path, required=True, help="the recipient's Ed25519 private key (PEM) that signs")
    p.add_argument("--kid", default=None, help="key id the site knows the key by (default: its JWK thumbprint)")
    p.add_argument("--recipient", required=True, help="the recipient's name in the site's policy")
    p.add_argument("--site", required=True, help="site id the alert came from")
    p.add_argument("--prefix", default="edge", help="the site's topic prefix (default: edge)")
    p.add_argument("--alert", required=True, help="the alert's identifier")
    p.add_argument("--incident", required=True, help="the alert's incident id")
    p.add_argument("--status", required=True, choices=STATUS_KINDS, help="what happened to the alert")
    p.add_argument("--disposition", choices=DISPOSITIONS, default=None, help="with --status closed: how it ended")
    p.add_argument("--note", default=None, help="free text (at most 500 characters)")
    p.add_argument("--operator", default=None, help="who, at the recipient (at most 100 characters)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker (default: 10)")
    p.set_defaults(handler=run_status_send)


def run_status_send(args: argparse.Namespace) -> int:
    signer = StatusSigner.from_file(args.key, args.recipient, args.kid)
    try:
        status = signer.make(
            site_id=args.site,
            alert_id=args.alert,
            incident_id=args.incident,
            status=args.status,
            disposition=args.disposition,
            note=args.note,
            operator=args.operator,
        )
    except AgentError as err:  # a value the schema refuses: the user's input
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    topic = signer.topic(args.prefix, status)
    send_once(connection_options(args), topic, signer.sign(status), args.timeout)
    print(f"sent {status.status} for alert {status.alert_id} on {topic} (status_id {status.status_id})")
    return 0
