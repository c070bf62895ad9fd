"""`edge-agent subscribe`: an agency's verifying subscriber.

Prints one table row per accepted alert on stdout, reports every rejected
message (bad signature, unknown key, malformed) on stderr, drops duplicates,
and writes the verified alert objects as JSON lines (`--out FILE`) or CAP
1.2 XML (`--cap`, one document per alert on stdout or, with `--out DIR`, one
file per alert). Exit status: 0, or 1 when `--count` alerts did not arrive
within `--timeout`.
"""

from __future__ import annotations

__all__ = ["register"]

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from agent.agency.subscriber import AlertReceiver, ReceivedAlert, ReceiverOptions, parse_broker_url
from agent.alerts.cap import alert_to_cap_xml
from agent.alerts.schema import Alert
from agent.delivery.credentials import read_password_file
from agent.delivery.signing import TrustStore
from agent.errors import AgentError

PASSWORD_ENV = "EDGE_MQTT_PASSWORD"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("subscribe", help="receive, verify and print alerts (agency side)")
    p.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
    p.add_argument("--topic", required=True, help="topic filter, e.g. edge/+/+/alerts/#")
    p.add_argument("--trust", type=Path, required=True, help="directory of trusted <kid>.pem public keys")
    p.add_argument("--cap", action="store_true", help="write CAP 1.2 XML instead of JSON lines")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSONL file to append verified alerts to (with --cap: a directory of .xml files)",
    )
    p.add_argument("--count", type=int, default=None, help="exit after this many accepted alerts")
    p.add_argument("--timeout", type=float, default=None, help="exit after this many seconds")
    p.add_argument("--ca-file", type=Path, default=None, help="CA bundle for mqtts://")
    p.add_argument("--cert-file", type=Path, default=None, help="client certificate (PEM)")
    p.add_argument("--key-file", type=Path, default=None, help="client private key (PEM)")
    p.add_argument("--no-verify-hostname", action="store_true", help="do not check the broker's name")
    p.add_argument("--username", default=None, help=f"user name; the password comes from ${PASSWORD_ENV}")
    p.add_argument("--password-file", type=Path, default=None, help="file whose first line is the password")
    p.add_argument("--client-id", default="", help="fixed client id (needed for --session-expiry)")
    p.add_argument(
        "--session-expiry",
        type=int,
        default=0,
        help="seconds the broker keeps the subscription and queued alerts while away",
    )
    p.set_defaults(handler=run_subscribe)


def _password(args: argparse.Namespace) -> str | None:
    if args.password_file is not None:
        return read_password_file(args.password_file, "--password-file")
    return os.environ.get(PASSWORD_ENV)


def _render_cap(alert: dict[str, Any]) -> str:
    """CAP 1.2 XML of a verified alert (a recipient view lacking CAP's required fields is refused)."""
    try:
        return alert_to_cap_xml(Alert.model_validate(alert)).decode("utf-8")
    except ValidationError as err:
        raise AgentError(
            f"alert {alert.get('identifier')} lacks fields CAP requires: {err.error_count()} problem(s)"
        ) from None


def _row(item: ReceivedAlert) -> str:
    alert = item.verified.alert
    info = alert.get("info")
    first = info if isinstance(info, dict) else {}
    severity = first.get("severity", alert.get("severity", "-"))
    event = first.get("event", alert.get("event", "-"))
    iat = item.verified.issued_at.strftime("%H:%M:%S")
    return f"{iat}  {severity:<8}  {item.verified.alert_id:<36}  {event:<24}  {item.topic}"


def _writer(args: argparse.Namespace, out: TextIO | None) -> Callable[[ReceivedAlert], None]:
    if args.cap:

        def write_cap(item: ReceivedAlert) -> None:
            xml = _render_cap(item.verified.alert)
            if args.out is None:
                sys.stdout.write(xml + "\n")
            else:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / f"{item.verified.alert_id}-{item.message_id[:12]}.xml").write_text(xml)

        return write_cap

    def write_json(item: ReceivedAlert) -> None:
        if out is not None:
            out.write(json.dumps(item.verified.alert, ensure_ascii=False, separators=(",", ":")) + "\n")
            out.flush()

    return write_json


def run_subscribe(args: argparse.Namespace) -> int:
    url = parse_broker_url(args.broker)
    trust = TrustStore.from_dir(args.trust)
    options = ReceiverOptions(
        url=url,
        topic_filter=args.topic,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        verify_hostname=not args.no_verify_hostname,
        username=args.username,
        password=_password(args),
        client_id=args.client_id,
        session_expiry_s=args.session_expiry,
    )

    def report(topic: str, reason: str) -> None:
        print(f"rejected: {topic}: {reason}", file=sys.stderr, flush=True)

    out = open(args.out, "a", encoding="utf-8") if args.out is not None and not args.cap else None  # noqa: SIM115
    try:
        write = _writer(args, out)
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        accepted = 0
        with AlertReceiver(options, trust, report) as receiver:
            receiver.wait_subscribed(min(10.0, args.timeout) if args.timeout else 10.0)
            print("ready", file=sys.stderr, flush=True)
            while args.count is None or accepted < args.count:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                item = receiver.get(0.5 if left is None else min(0.5, left))
                if item is None:
                    continue
                accepted += 1
                print(_row(item), flush=True)
                write(item)
        print(
            f"accepted={accepted} rejected={receiver.rejected} duplicates={receiver.duplicates}",
            file=sys.stderr,
            flush=True,
        )
    finally:
        if out is not None:
            out.close()
    return 0 if args.count is None or accepted >= args.count else 1
