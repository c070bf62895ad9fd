"""`edge-agent` entry point: assembles the sub-commands and maps errors to exit codes.

Each command group lives in its own module under `agent.cli` and exposes
`register(subparsers)`, which adds its parser and sets `handler` to a
function `(args) -> int`. User mistakes raise `AgentError` and are printed as
one line on stderr with exit code 2 (bad input) or 1 (could not run).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from agent import __version__
from agent.errors import AgentError, ConfigError

# Command modules, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "agent.cli.pipeline_commands",
    "agent.cli.validate_command",
    "agent.cli.preview_command",
    "agent.cli.tune_command",
    "agent.cli.models_command",
    "agent.cli.keys_command",
    "agent.cli.subscribe_command",
    "agent.cli.status_send_command",
    "agent.cli.console_command",
    "agent.cli.cap_command",
    "agent.cli.audit_command",
    "agent.cli.transparency_command",
    "agent.cli.incidents_command",
    "agent.cli.requests_command",
    "agent.cli.status_command",
    "agent.cli.warmup_command",
    "agent.cli.drill_command",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description=(
            "Edge video-analytics agent: reads cameras, detects and tracks people and "
            "vehicles, and publishes signed, redacted alerts over MQTT."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="lowest level of the key=value log lines written to stderr (default: info)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from agent.runtime.numba_cache import configure_from_argv

    # Before the command modules import the Numba kernels, which fixes their cache folder.
    configure_from_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    from agent.logs import configure_logging

    configure_logging(args.log_level)
    try:
        return int(args.handler(args))
    except ConfigError as err:
        for issue in err.issues:
            print(f"error: {issue}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AgentError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
