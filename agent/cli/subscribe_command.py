"""`edge-agent subscribe`: a recipient's verifying subscriber.

Accepts only alerts signed by a key the trust registry (`--registry`) lists
for the site they claim, under that site's topics, for this recipient
(`--recipient`), fresh and not seen before (`--seen-db`, kept across
restarts). Prints one row per accepted alert on stdout, one `rejected:` line
per refused message on stderr (duplicates are only counted), and writes the
accepted alerts as JSON lines (`--out FILE`) or CAP 1.2 XML (`--cap`, one
document per alert on stdout or, with `--out DIR`, one file per alert). With
`--status-key` it signs and sends a `received` status for each accepted
alert. Exit status: 0, or 1 when `--count` alerts did not arrive within
`--timeout`.
"""

from __future__ import annotations

__all__ = ["add_broker_options", "connection_options", "default_seen_db", "register"]

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from agent.agency.alert_verifier import DEFAULT_WINDOW_S, AcceptedAlert, AlertVerifier, Freshness
from agent.agency.broker_connection import ConnectionOptions, parse_broker_url
from agent.agency.rejections import Rejected
from agent.agency.seen_store import SeenStore
from agent.agency.status_sender import StatusSigner
from agent.agency.subscriber import AlertReceiver, ReceivedAlert, ReceiverOptions
from agent.agency.trust_registry_file import load_registry
from agent.alerts.cap import alert_to_cap_xml
from agent.alerts.schema import PublishedAlert
from agent.delivery.credentials import read_password_file
from agent.errors import AgentError

PASSWORD_ENV = "EDGE_MQTT_PASSWORD"


def add_broker_options(p: argparse.ArgumentParser) -> None:
    """The broker, TLS and credential options `subscribe` and `status-send` share."""
    p.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
    p.add_argument("--ca-file", type=Path, default=None, help="CA bundle for mqtts://")
    p.add_argument("--cert-file", type=Path, default=None, help="TLS client certificate (PEM)")
    p.add_argument("--key-file", type=Path, default=None, help="TLS client private key (PEM)")
    p.add_argument("--no-verify-hostname", action="store_true", help="do not check the broker's name")
    p.add_argument("--username", default=None, help=f"user name; the password comes from ${PASSWORD_ENV}")
    p.add_argument("--password-file", type=Path, default=None, help="file whose first line is the password")


def connection_options(args: argparse.Namespace, client_id: str = "", session_expiry_s: int = 0) -> ConnectionOptions:
    password = (
        read_password_file(args.password_file, "--password-file")
        if args.password_file is not None
        else os.environ.get(PASSWORD_ENV)
    )
    return ConnectionOptions(
        url=parse_broker_url(args.broker),
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        verify_hostname=not args.no_verify_hostname,
        username=args.username,
        password=password,
        client_id=client_id,
        session_expiry_s=session_expiry_s,
    )


def default_seen_db(recipient: str) -> Path:
    """`$XDG_STATE_HOME/edge-agent/seen-<recipient>.sqlite`, else under `~/.local/state`."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "edge-agent" / f"seen-{recipient}.sqlite"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "subscribe", help="receive, verify and print alerts (recipient side)", description=__doc__
    )
    add_broker_options(p)
    p.add_argument("--registry", type=Path, required=True, help="trust registry: the sites, topics and keys trusted")
    p.add_argument("--recipient", required=True, help="who this receiver is: alerts for another recipient are refused")
    p.add_argument(
        "--topic",
        action="append",
        default=None,
        help="topic filter (repeatable); default: every registered site's <prefix>/<site>/+/alerts/#",
    )
    p.add_argument("--status-key", type=Path, default=None, help="Ed25519 key to sign statuses; sends `received`")
    p.add_argument("--status-kid", default=None, help="key id of --status-key (default: its JWK thumbprint)")
    p.add_argument(
        "--seen-db",
        type=Path,
        default=None,
        help="SQLite file of accepted alerts, so a replay is refused after a restart too "
        "(default: $XDG_STATE_HOME/edge-agent/seen-<recipient>.sqlite)",
    )
    p.add_argument(
        "--max-age",
        type=float,
        default=DEFAULT_WINDOW_S,
        help="freshness window: refuse alerts sent longer ago than this many seconds (default: 86400)",
    )
    p.add_argument("--cap", action="store_true", help="write CAP 1.2 XML instead of JSON lines")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSONL file to append accepted alerts to (with --cap: a directory of .xml files)",
    )
    p.add_argument("--count", type=int, default=None, help="exit after this many accepted alerts")
    p.add_argument("--timeout", type=float, default=None, help="exit after this many seconds")
    p.add_argument("--client-id", default="", help="fixed client id (needed for --session-expiry)")
    p.add_argument(
        "--session-expiry",
        type=int,
        default=0,
        help="seconds the broker keeps the subscription and queued alerts while away",
    )
    p.set_defaults(handler=run_subscribe)


def render_cap(accepted: AcceptedAlert) -> str:
    """CAP 1.2 XML of an accepted alert.

    Raises:
        Rejected: `not_renderable`, for a view that lacks fields CAP requires.
    """
    try:
        return alert_to_cap_xml(PublishedAlert.model_validate(accepted.data)).decode("utf-8")
    except ValidationError as err:
        raise Rejected(
            "not_renderable",
            f"alert {accepted.alert.identifier} lacks fields CAP requires ({err.error_count()} problem(s))",
            site_id=accepted.site.site_id,
        ) from None


def _row(item: ReceivedAlert) -> str:
    alert = item.accepted.alert
    sent = alert.sent.strftime("%H:%M:%S")
    return (
        f"{sent}  {alert.severity or '-':<8}  {alert.identifier:<36}  {alert.event or '-':<24}  "
        f"{item.accepted.site.site_id}  {item.topic}"
    )


def _write(args: argparse.Namespace, item: ReceivedAlert, out: TextIO | None) -> None:
    if args.cap:
        xml = item.rendered or ""
        if args.out is None:
            sys.stdout.write(xml + "\n")
            sys.stdout.flush()
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            name = f"{item.accepted.site.site_id}-{item.accepted.alert.identifier}.xml"
            (args.out / name).write_text(xml, encoding="utf-8")
    elif out is not None:
        out.write(json.dumps(item.accepted.data, ensure_ascii=False, separators=(",", ":")) + "\n")
        out.flush()


def _report(topic: str, why: Rejected) -> None:
    if why.reason != "duplicate":
        print(f"rejected: {topic}: {why.reason}: {why.detail}", file=sys.stderr, flush=True)


def run_subscribe(args: argparse.Namespace) -> int:
    registry = load_registry(args.registry)
    if args.max_age <= 0:
        raise AgentError("--max-age must be more than 0 seconds")
    if args.cap and args.out is not None and args.out.is_file():
        raise AgentError(f"--out {args.out} is a file; with --cap it names a directory")
    signer = StatusSigner.from_file(args.status_key, args.recipient, args.status_kid) if args.status_key else None
    options = ReceiverOptions(
        connection_options(args, args.client_id, args.session_expiry),
        tuple(args.topic) if args.topic else tuple(registry.alert_filters()),
    )
    freshness = Freshness(window_s=args.max_age)
    seen_path = args.seen_db or default_seen_db(args.recipient)
    out = open(args.out, "a", encoding="utf-8") if args.out is not None and not args.cap else None  # noqa: SIM115
    accepted = 0
    try:
        with SeenStore(seen_path, window_s=freshness.window_s) as seen:
            verifier = AlertVerifier(registry, args.recipient, seen, freshness)
            receiver = AlertReceiver(
                options,
                verifier,
                on_reject=_report,
                status_signer=signer,
                render=render_cap if args.cap else None,
            )
            deadline = None if args.timeout is None else time.monotonic() + args.timeout
            with receiver:
                receiver.wait_subscribed(min(10.0, args.timeout) if args.timeout else 10.0)
                print("ready", file=sys.stderr, flush=True)
                while args.count is None or accepted < args.count:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    item = receiver.get(0.5 if left is None else min(0.5, left))
                    if item is None:
                        continue
                    print(_row(item), flush=True)
                    _write(args, item, out)
                    receiver.done(item)
                    accepted += 1
            reasons = " ".join(f"{k}={v}" for k, v in sorted(receiver.counts.snapshot().items()))
            print(
                f"accepted={accepted} rejected={receiver.rejected} duplicates={receiver.duplicates} "
                f"statuses_sent={receiver.statuses_sent}" + (f" ({reasons})" if reasons else ""),
                file=sys.stderr,
                flush=True,
            )
    finally:
        if out is not None:
            out.close()
    return 0 if args.count is None or accepted >= args.count else 1
