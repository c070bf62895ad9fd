"""`edge-agent cap --in alerts.jsonl [--out DIR|-]`: render alerts as CAP 1.2 XML."""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import sys
from pathlib import Path

from agent.alerts.cap import alert_to_cap_xml, alerts_from_jsonl


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "cap",
        help="render alerts (JSON Lines) as CAP 1.2 XML",
        description=(
            "Read alerts, one JSON object a line (plain alerts, or signed envelopes holding "
            "the alert, such as the JWS lines `edge-agent replay` writes), and write each as an "
            "OASIS CAP 1.2 XML document. Signatures are not checked here: `edge-agent subscribe` "
            "verifies them."
        ),
    )
    parser.add_argument(
        "--in", dest="input", required=True, type=Path, metavar="FILE", help="JSON Lines file of alerts or envelopes"
    )
    parser.add_argument(
        "--out",
        default="-",
        metavar="DIR|-",
        help="folder for one IDENTIFIER.xml per alert, or - for standard output (default)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    alerts = list(alerts_from_jsonl(args.input))  # parse all first: a bad line writes nothing
    if args.out == "-":
        for alert in alerts:
            sys.stdout.buffer.write(alert_to_cap_xml(alert) + b"\n")
        sys.stdout.flush()
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for alert in alerts:
        (out / f"{alert.identifier}.xml").write_bytes(alert_to_cap_xml(alert) + b"\n")
    print(f"wrote {len(alerts)} CAP document(s) to {out}", file=sys.stderr)
    return 0
