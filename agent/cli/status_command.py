"""`edge-agent status`: is the agent of this config running and healthy, and how is it doing.

Reads the state file the running agent rewrites every few seconds in
`runtime.state_dir`. Exit codes follow the LSB convention for status:
0 running and healthy, 1 running but unhealthy (or the file is stale),
3 not running, and 150 (LSB leaves 150-199 to the application) running and
healthy but degraded: a camera unreachable or restarting, the broker down.
"""

from __future__ import annotations

__all__ = ["register"]

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import yaml

from agent.cli.options import add_config_options
from agent.config import RuntimeConfig, load_config
from agent.errors import ConfigError
from agent.histogram import HistogramSnapshot
from agent.runtime.health import AgentState, StateVerdict, judge_state, read_state

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1
EXIT_NOT_RUNNING = 3
EXIT_DEGRADED = 150


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show whether the agent is running and healthy (exit 0 healthy, 1 unhealthy, 3 not running, 150 degraded)",
        description=(
            "Read the running agent's state file (runtime.state_dir of the config) and print its health, "
            "broker, outbox and per-camera rates. Exit 0 when running and healthy, 1 when running but "
            "unhealthy or not updating, 3 when not running, 150 when running but degraded (a camera unreachable "
            "or restarting, the broker down: part of the site is not working, and a restart would not fix it)."
        ),
    )
    add_config_options(parser)
    parser.add_argument("--state-dir", metavar="DIR", help="read the state file here instead of runtime.state_dir")
    parser.add_argument("--json", action="store_true", help="print the state file as JSON")
    parser.set_defaults(handler=_status)


def _state_dir(args: argparse.Namespace) -> Path:
    """The config's state folder; a config being edited (invalid now) still names it."""
    if args.state_dir:
        return Path(args.state_dir)
    try:
        return Path(load_config(args.config, args.overrides).runtime.state_dir)
    except ConfigError as err:
        print(
            f"note: {args.config} does not validate now ({err.issues[0]}); reading runtime.state_dir as written",
            file=sys.stderr,
        )
        config_file = Path(args.config)
        try:
            doc = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            raise err from None
        runtime = doc.get("runtime") if isinstance(doc, dict) else None
        raw = runtime.get("state_dir") if isinstance(runtime, dict) else None
        path = Path(str(raw)) if raw else RuntimeConfig().state_dir
        return path if path.is_absolute() else config_file.resolve().parent / path


def _status(args: argparse.Namespace) -> int:
    state = read_state(_state_dir(args))
    verdict = judge_state(state)
    if args.json:
        print(state.to_json() if state is not None else json.dumps({"status": "absent"}))
    else:
        _print_state(state, verdict, sys.stdout)
    if not verdict.running:
        return EXIT_NOT_RUNNING
    if not verdict.healthy:
        return EXIT_UNHEALTHY
    return EXIT_DEGRADED if verdict.degraded else EXIT_HEALTHY


def _print_state(state: AgentState | None, verdict: StateVerdict, out: TextIO) -> None:
    word = "unhealthy" if verdict.running else "not running"
    if verdict.healthy:
        word = "degraded" if verdict.degraded else "healthy"
    print(f"agent: {word} ({verdict.reason})", file=out)
    if state is None or not verdict.running:
        return
    age_s = time.time() - state.updated_unix_s
    print(f"  pid {state.pid}, status {state.status}, updated {age_s:.1f} s ago", file=out)
    for line in state.health.problems:
        print(f"  problem: {line}", file=out)
    for line in state.health.warnings:
        print(f"  warning: {line}", file=out)
    if state.stats is not None:
        _print_stats(state.stats, out)


def _print_stats(stats: dict[str, Any], out: TextIO) -> None:
    proc = stats["process"]
    print(
        f"  site {stats['site_id']}, up {stats['uptime_s']:.0f} s, broker {stats['broker_state']}, "
        f"outbox {stats['outbox_depth']} waiting / {stats['outbox_dropped']} dropped",
        file=out,
    )
    print(
        f"  cpu {proc['cpu_fraction']:.0%} of {proc['cpu_count']} cores, rss {proc['rss_bytes'] / 2**20:.0f} MiB, "
        f"rate scale {stats['rate_scale']:.0%}",
        file=out,
    )
    header = (
        f"  {'camera':<16} {'state':<11} {'fps/target':>11} {'detected':>9} {'skipped':>8} "
        f"{'infer ms':>8} {'motion':>7} {'tracks':>6}"
    )
    print(header, file=out)
    for cam in stats["cameras"]:
        print(
            f"  {cam['camera_id']:<16} {cam['state']:<11} "
            f"{cam['achieved_fps']:>5.1f}/{cam['target_fps']:<5.1f} {cam['frames_detected']:>9} "
            f"{cam['frames_skipped']:>8} {cam['inference_ms']:>8.1f} {cam['motion_duty']:>7.0%} "
            f"{cam['tracks']:>6}",
            file=out,
        )
    _print_feedback(stats.get("feedback"), out)


def _print_feedback(feedback: dict[str, Any] | None, out: TextIO) -> None:
    """Per recipient that sent anything back or has escalations: statuses, median time to received /
    acknowledged, rejections, escalations (nothing for a site whose recipients send nothing)."""
    active = [
        r
        for r in (feedback or {}).get("recipients", [])
        if r["statuses"] or r["rejected"] or r["duplicates"] or r["escalated"] or r["escalations_pending"]
    ]
    if not active:
        return
    print(
        f"  {'recipient':<20} {'statuses':>8} {'received p50':>12} {'ack p50':>9} {'rejected':>8} {'escalated':>9}",
        file=out,
    )
    for r in active:
        print(
            f"  {r['recipient']:<20} {sum(r['statuses'].values()):>8} {_median(r['received_seconds']):>12} "
            f"{_median(r['acknowledged_seconds']):>9} {sum(r['rejected'].values()):>8} "
            f"{r['escalated']:>9}" + (f" ({r['escalations_pending']} waiting)" if r["escalations_pending"] else ""),
            file=out,
        )


def _median(hist: dict[str, Any]) -> str:
    snapshot = HistogramSnapshot(tuple(hist["bounds_s"]), tuple(hist["counts"]), float(hist["sum_s"]))
    return f"{snapshot.quantile(0.5):.3f} s" if snapshot.count else "-"
