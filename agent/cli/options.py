"""Command-line options shared by several commands."""

from __future__ import annotations

__all__ = ["add_config_options"]

import argparse


def add_config_options(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """Add the config file argument and the repeatable `--set dotted.path=value`."""
    if positional:
        parser.add_argument("config", metavar="FILE", help="site config file (YAML)")
    else:
        parser.add_argument("--config", required=True, metavar="FILE", help="site config file (YAML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help=(
            "override one config value, e.g. --set mqtt.port=1884 or "
            "--set cameras.0.detect_fps=5 (repeatable; VALUE is read as YAML)"
        ),
    )
