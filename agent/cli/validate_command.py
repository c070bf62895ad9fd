"""`edge-agent validate FILE`: check a site config without running anything."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from agent.cli.options import add_config_options
from agent.config import load_config
from agent.config.agreements import agreement_warnings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a site config file",
        description=(
            "Validate a site config. Exits 0 when it is valid; otherwise prints every "
            "problem as FILE:LINE: FIELD: REASON and exits 2. Zones covering under 0.5% or over "
            "95% of the frame are warned about on stderr (exit stays 0); pixel zones are checked "
            "only when the camera's source is a readable video file. So is every sharing agreement "
            "that has ended, has not begun, or ends within its warn_before_days (30 by default)."
        ),
    )
    add_config_options(parser, positional=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    from agent.integrator.zone_checks import zone_warnings

    for camera in config.cameras:
        for warning in zone_warnings(camera):
            print(f"warning: {args.config}: {warning}", file=sys.stderr)
    recipients = {r.name: r.agreement_id for r in config.policies.recipients}
    for warning in agreement_warnings(config.policies.agreements, recipients, datetime.now(UTC)):
        print(f"warning: {args.config}: {warning}", file=sys.stderr)
    rules = sum(len(c.rules) for c in config.cameras)
    zones = sum(len(c.zones) for c in config.cameras)
    print(
        f"ok: {args.config}: site {config.site.id}, {len(config.cameras)} camera(s), {zones} zone(s), {rules} rule(s)"
    )
    return 0
