"""`edge-agent tune`: sweep score thresholds and minimum durations over a clip, from one detection pass."""

from __future__ import annotations

__all__ = ["register"]

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from agent.cli.options import add_config_options
from agent.config import load_config
from agent.errors import ConfigError, ConfigIssue
from agent.integrator.tune import DetectionCache, GridPoint, TuneGrid, cache_detections, sweep
from agent.runtime.clip_replay import select_camera

_DEFAULT_SCORES = (0.25, 0.35, 0.45, 0.55)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="sweep detector score thresholds and rule minimum durations over a clip",
        description=(
            "Run the detector once over a clip at the lowest threshold of the grid, cache its boxes "
            "and the motion gate's decisions, then rerun tracking, rules and alerts for every score "
            "threshold x duration factor (each zone rule's min_duration_s, loitering min_dwell_s) and "
            "print the alerts each would produce; with --gt (MOTChallenge ground truth of the clip), "
            "also precision and recall of intrusion and line rules. Nothing is published."
        ),
    )
    add_config_options(parser)
    parser.add_argument("--source", required=True, metavar="VIDEO", help="video file to sweep over")
    parser.add_argument("--camera", metavar="ID", help="camera whose zones and rules apply (default: the first)")
    parser.add_argument("--gt", metavar="GT.txt", help="MOTChallenge ground truth of the clip (frame N = N-th frame)")
    parser.add_argument(
        "--scores",
        type=_floats,
        metavar="S,S,...",
        help=f"detector score thresholds (default: {','.join(map(str, _DEFAULT_SCORES))} and the config's own)",
    )
    parser.add_argument(
        "--duration-factors",
        type=_floats,
        default=(0.5, 1.0, 2.0),
        metavar="F,F,...",
        help="factors on every rule's minimum duration (default: 0.5,1,2)",
    )
    parser.add_argument(
        "--detect-fps",
        type=float,
        metavar="FPS",
        help="frames per second of clip time sent to the detector; 0 for every frame (default: the camera's)",
    )
    parser.add_argument("--max-frames", type=int, metavar="N", help="only the first N frames of the clip")
    parser.add_argument(
        "--start-time",
        metavar="ISO8601",
        help="wall-clock time of the clip's first frame, for schedules (default: the file's modification time)",
    )
    parser.set_defaults(handler=run)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None


def _start_time(value: str | None, source: Path) -> datetime:
    if value is None:
        return datetime.fromtimestamp(int(source.stat().st_mtime), UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError([ConfigIssue("--start-time", None, "start-time", "not an ISO 8601 time")]) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    camera = select_camera(config, args.camera)
    source = Path(args.source)
    if not source.is_file():
        raise ConfigError([ConfigIssue("--source", None, "source", f"video file not found: {source}")])
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError([ConfigIssue("--max-frames", None, "max-frames", "must be 1 or more")])
    scores = args.scores or tuple(sorted({*_DEFAULT_SCORES, config.detector.score_threshold}))
    grid = TuneGrid(tuple(scores), tuple(args.duration_factors))
    gt = None
    if args.gt:
        from agent.evaluation.mot import read_mot

        if not Path(args.gt).is_file():
            raise ConfigError([ConfigIssue("--gt", None, "gt", f"ground-truth file not found: {args.gt}")])
        try:
            gt = read_mot(args.gt)
        except ValueError as err:
            raise ConfigError([ConfigIssue("--gt", None, "gt", f"not MOTChallenge text: {err}")]) from None
    cache = cache_detections(
        config,
        camera,
        source,
        min_score=min(grid.score_thresholds),
        start_utc=_start_time(args.start_time, source),
        detect_fps=args.detect_fps,
        max_frames=args.max_frames,
    )
    started = time.perf_counter()
    points = sweep(cache, config, camera, grid, gt)
    _print_table(points, cache, time.perf_counter() - started, sys.stdout)
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _print_table(points: list[GridPoint], cache: DetectionCache, sweep_s: float, out: TextIO) -> None:
    header = ("score", "factor", "rule", "kind", "min_s", "incidents", "alerts", "precision", "recall", "truth")
    rows = [
        (
            f"{p.score_threshold:.2f}",
            f"{p.duration_factor:g}",
            o.rule,
            o.kind,
            "-" if o.min_duration_s is None else f"{o.min_duration_s:g}",
            str(o.incidents),
            str(o.alerts),
            _fmt(o.precision),
            _fmt(o.recall),
            "-" if o.true_events is None else str(o.true_events),
        )
        for p in points
        for o in p.outcomes
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)), file=out)
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)), file=out)
    print(
        f"\n{len(cache.frames)} frames, one detection pass at score >= {cache.min_score:g} in {cache.elapsed_s:.1f} s; "
        f"{len(points)} grid points rerun from the cache in {sweep_s:.1f} s",
        file=out,
    )
