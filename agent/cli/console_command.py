"""`edge-agent console`: the receiving side's web console, its ingest service and its users.

    edge-agent console --config receiving.yaml [--with-ingest]
    edge-agent console ingest --config receiving.yaml [--replica N] [--leave]
    edge-agent console add-user NAME --role ROLE --config receiving.yaml [--password-file FILE]

`console` serves the web console (loopback by default; beyond it only with
TLS settings or `console.allow_plain_http`); `--with-ingest` runs the ingest
service in the same process, the simple way for one machine. `console
ingest` runs the ingest service alone: it subscribes with a persistent
session, verifies, stores and answers `received`; several can share one
database. With `broker.shared_group` in the config, replicas share the
alerts (an MQTT 5 shared subscription): start each with its own `--replica
N` (a number or a stable name such as a StatefulSet pod's $HOSTNAME), which
makes its client id `<client_id>-<N>`; keep N the same across restarts, since
the broker holds that replica's undelivered alerts in that session.
`--leave` ends a replica's session for good when the group shrinks (the
broker would go on queueing its share): stop the replica first, while no
alerts arrive.
`add-user` reads the password from `--password-file` (its first line) or a
prompt. Imports of the web stack happen only here, not when the site agent
starts.
"""

from __future__ import annotations

__all__ = ["register"]

import argparse
import getpass
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from agent.errors import AgentError

_SUB = argparse.SUPPRESS  # subcommand copies of --config do not overwrite the parent's value


def _config_option(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument("--config", type=Path, default=default, help="receiving config file (YAML)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "console",
        help="the receiving side: web console, ingest service, users",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_option(p, None)
    p.add_argument("--with-ingest", action="store_true", help="run the ingest service in this process too")
    p.set_defaults(handler=run_console)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ingest = actions.add_parser("ingest", help="run the ingest service alone (no web console)")
    _config_option(ingest, _SUB)
    ingest.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    ingest.add_argument(
        "--replica",
        default=None,
        metavar="N",
        help="this replica's name (client id <client_id>-N); the same on every restart",
    )
    ingest.add_argument(
        "--leave",
        action="store_true",
        help="end this replica's broker session for good (scaling down) and exit",
    )
    ingest.set_defaults(handler=run_ingest)
    add = actions.add_parser("add-user", help="add a console user")
    _config_option(add, _SUB)
    add.add_argument("name", help="login name")
    add.add_argument("--role", required=True, choices=("analyst", "operator", "supervisor", "auditor"))
    add.add_argument("--password-file", type=Path, default=None, help="file whose first line is the password")
    add.set_defaults(handler=run_add_user)


def _config(args: argparse.Namespace) -> Any:
    from agent.agency.receiving_config import load_receiving_config

    if args.config is None:
        raise AgentError("--config FILE is required (the receiving config)")
    return load_receiving_config(args.config)


def _stop_on_signals(stop: Any) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_ingest(args: argparse.Namespace) -> int:
    from agent.agency.ingest import IngestService, leave_group

    if args.leave:
        print(f"session {leave_group(_config(args), args.replica)} ended", file=sys.stderr)
        return 0
    service = IngestService(_config(args), replica=args.replica)
    _stop_on_signals(service.stop)
    counts = service.run(timeout_s=args.timeout)
    print(
        f"stored={counts.stored} duplicates={counts.duplicates} statuses={counts.statuses} "
        f"rejected={service.rejected} health={counts.health} purged={counts.purged}",
        file=sys.stderr,
    )
    return 0


def run_console(args: argparse.Namespace) -> int:
    from agent.agency.console.server import serve
    from agent.agency.ingest import IngestService

    config = _config(args)
    if not args.with_ingest:
        return int(serve(config))
    with IngestService(config) as service:
        return int(serve(config, engine=service.engine))


def _read_password(path: Path | None) -> str:
    from agent.delivery.credentials import read_password_file

    if path is not None:
        return read_password_file(path, "--password-file")
    if not sys.stdin.isatty():
        raise AgentError("no terminal to ask for the password: give --password-file FILE")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AgentError("the two passwords differ")
    return first


def run_add_user(args: argparse.Namespace) -> int:
    from agent.agency.store import UserStore, open_database

    config = _config(args)
    password = _read_password(args.password_file)
    from agent.privacy.audit import AuditLog

    user = UserStore(open_database(config.database)).add(args.name, args.role, password)
    AuditLog(config.console.audit_log).record_event(
        "console_user_added", user="(command line)", name=user.name, role=user.role
    )
    print(f"added {user.role} {user.name!r}")
    return 0
