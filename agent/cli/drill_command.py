"""`edge-agent drill`: send a drill scenario as CAP `Exercise` alerts; `edge-agent drill report`: its scorecard.

By default the running agent sends the drill (`agent.drills.drill_desk`: it
owns the site's MQTT session and believes the statuses that come back);
`--standalone` sends it from this process when no agent runs, and waits
`--wait` seconds for the recipients' statuses.
"""

from __future__ import annotations

__all__ = ["register"]

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from agent.cli.audit_command import parse_since
from agent.config import load_config
from agent.drills.drill_handoff import hand_over
from agent.drills.drill_run import new_drill_id
from agent.drills.drill_standalone import run_standalone
from agent.drills.scorecard import score_drills
from agent.drills.scorecard_text import scorecard_text
from agent.errors import AgentError, ConfigError, ConfigIssue


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "drill",
        help="send a drill scenario as CAP Exercise alerts (or: drill report)",
        description=(
            "Play a drill scenario of the config's drills section through its camera's zones and rules and send "
            "the alerts, marked CAP status Exercise, through the site's real delivery path. The running agent "
            "sends it; with --standalone (no agent running) this command does, and waits --wait seconds for "
            "statuses. `edge-agent drill report --audit LOG` prints the scorecard."
        ),
    )
    # Not required here: `drill report` reads only the audit log.
    parser.add_argument("--config", metavar="FILE", help="site config file (YAML)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE", help="override one config value"
    )
    parser.add_argument("--scenario", metavar="NAME", help="scenario name from the drills section")
    parser.add_argument("--standalone", action="store_true", help="send it from this process (no agent running)")
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="S",
        help="--standalone: seconds to wait for statuses after the drill (default 60)",
    )
    parser.set_defaults(handler=_drill)
    commands = parser.add_subparsers(dest="drill_command", metavar="ACTION")
    report = commands.add_parser(
        "report",
        help="per drill and recipient: alerts, time to each status, what was missed",
        description="Verify the audit log's chain (a broken one is refused), then print the drills' scorecard.",
    )
    report.add_argument("--audit", required=True, type=Path, metavar="LOG", help="the site's audit log (JSONL)")
    report.add_argument("--drill", metavar="ID", help="only this drill")
    report.add_argument(
        "--from", dest="since", type=parse_since, metavar="ISO|DURATION", help="drills started at or after"
    )
    report.add_argument("--to", dest="until", type=parse_since, metavar="ISO|DURATION", help="drills started before")
    report.add_argument("--json", action="store_true", help="print the scorecard as JSON")
    report.set_defaults(handler=_report)


def _drill(args: argparse.Namespace) -> int:
    if not args.config or not args.scenario:
        raise ConfigError([ConfigIssue("drill", None, "--config/--scenario", "both are required to run a drill")])
    config = load_config(args.config, args.overrides)
    scenario = config.drills.scenario(args.scenario)
    if scenario is None:
        known = ", ".join(s.name for s in config.drills.scenarios) or "none"
        raise ConfigError(
            [ConfigIssue(args.config, None, "drills.scenarios", f"no scenario {args.scenario!r} (scenarios: {known})")]
        )
    drill_id = new_drill_id(scenario.name)
    print(f"drill {drill_id}: scenario {scenario.name} on camera {scenario.camera}", flush=True)
    if not args.standalone:
        request = hand_over(
            config, scenario.name, drill_id, on_taken=lambda r: print("the running agent is sending it", flush=True)
        )
        print(
            f"drill {drill_id} {request.state}: {request.alerts} alerts, {request.messages} messages",
            request.detail,
        )
        return 0 if request.state == "finished" else 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    outcome, counters = run_standalone(config, scenario, drill_id, wait_s=args.wait, should_stop=stop.is_set)
    print(f"drill {drill_id} {outcome.state}: {outcome.alerts} alerts, {outcome.messages} messages", outcome.detail)
    accepted = sum(sum(r.statuses.values()) for r in counters.recipients)
    print(f"statuses accepted while waiting: {accepted}")
    return 0 if outcome.state == "finished" else 1


def _report(args: argparse.Namespace) -> int:
    try:
        drills = score_drills(args.audit, drill_id=args.drill, since=args.since, until=args.until)
    except AgentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"drills": [d.to_json() for d in drills]}, indent=2))
    else:
        sys.stdout.write(scorecard_text(drills))
    return 0
