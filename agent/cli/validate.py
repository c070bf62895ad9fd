"""`edge-agent validate FILE`: check a site config without running anything."""

from __future__ import annotations

import argparse

from agent.cli.options import add_config_options
from agent.config import load_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a site config file",
        description=(
            "Validate a site config. Exits 0 when it is valid; otherwise prints every "
            "problem as FILE:LINE: FIELD: REASON and exits 2."
        ),
    )
    add_config_options(parser, positional=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    rules = sum(len(c.rules) for c in config.cameras)
    zones = sum(len(c.zones) for c in config.cameras)
    print(
        f"ok: {args.config}: site {config.site.id}, {len(config.cameras)} camera(s), "
        f"{zones} zone(s), {rules} rule(s)"
    )
    return 0
