"""`edge-agent run`, `replay` and `detect`: the pipeline over live cameras or a recorded clip."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from agent.cli.options import add_config_options
from agent.config import CameraConfig, SiteConfig, load_config
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher
from agent.delivery.sink import JsonlStore, OutboxStore
from agent.errors import AgentError, ConfigError, ConfigIssue
from agent.privacy.audit import AuditLog
from agent.runtime.assembly import dispatcher_from_config
from agent.runtime.clip_replay import ReplaySummary, replay_file, select_camera
from agent.runtime.pipeline import CameraPipeline, FrameResult
from agent.values.frames import Frame


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the agent on the site's cameras until stopped",
        description=(
            "Run every enabled camera of the site and publish alerts to the configured broker. "
            "Runs until SIGTERM or Ctrl-C (then ends open incidents, flushes the outbox and "
            "publishes 'stopped'); a camera whose source is a file with loop: false ends with the file."
        ),
    )
    add_config_options(run)
    run.set_defaults(handler=_run)

    replay = subparsers.add_parser(
        "replay",
        help="run a config over a recorded clip and write the alerts it would publish",
        description=(
            "Replay a video file through the pipeline as fast as the machine allows and write "
            "exactly the payloads a live run would publish (signed envelopes), one JSON object "
            "per line. Deterministic for the same clip, config and start time."
        ),
    )
    add_config_options(replay)
    _add_clip_options(replay)
    replay.add_argument("--out", metavar="FILE", help="JSONL output (default: standard output)")
    replay.add_argument(
        "--publish",
        action="store_true",
        help="also publish the messages to the configured broker (through the outbox) and wait until acknowledged",
    )
    replay.add_argument(
        "--annotate",
        metavar="OUT.mp4",
        help=(
            "also write the processed frames with boxes, track trails, zones and lines (red while "
            "alerting), line counts and alert banners to this MP4 file (mp4v). The annotated video "
            "stays on this machine: it is never published and never leaves the box unless you copy it"
        ),
    )
    replay.set_defaults(handler=_replay)

    detect = subparsers.add_parser(
        "detect",
        help="write per-frame tracked boxes of a clip (MOTChallenge or JSONL)",
        description=(
            "Run detection and tracking over a clip and write the tracked boxes of every frame. "
            "mot: MOTChallenge lines frame,id,x,y,w,h,score,-1,-1,-1 (frames 1-based, x,y the "
            "top-left corner, pixels of the original frame); jsonl: one object per frame."
        ),
    )
    add_config_options(detect)
    _add_clip_options(detect, default_detect_fps=0.0)
    detect.add_argument("--out", required=True, metavar="FILE", help="output file")
    detect.add_argument("--format", choices=["mot", "jsonl"], default="mot", help="output format (default: mot)")
    detect.set_defaults(handler=_detect)


def _add_clip_options(parser: argparse.ArgumentParser, default_detect_fps: float | None = None) -> None:
    parser.add_argument("--source", required=True, metavar="VIDEO", help="video file to replay")
    parser.add_argument("--camera", metavar="ID", help="camera whose zones and rules apply (default: the first)")
    parser.add_argument(
        "--detect-fps",
        type=float,
        default=default_detect_fps,
        metavar="FPS",
        help=(
            "frames per second of clip time sent to the detector; 0 for every frame "
            + ("(default: every frame)" if default_detect_fps == 0 else "(default: the camera's detect_fps)")
        ),
    )
    parser.add_argument(
        "--start-time",
        metavar="ISO8601",
        help="wall-clock time of the clip's first frame (default: the file's modification time)",
    )
    parser.add_argument(
        "--max-frames",
        type=int,
        metavar="N",
        help="only the first N frames of the clip (default: all)",
    )


def _start_time(args: argparse.Namespace, source: Path) -> datetime:
    if args.start_time is None:
        return datetime.fromtimestamp(int(source.stat().st_mtime), UTC)
    try:
        value = datetime.fromisoformat(args.start_time)
    except ValueError:
        raise ConfigError([ConfigIssue("--start-time", None, "start-time", "not an ISO 8601 time")]) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _clip(args: argparse.Namespace) -> Path:
    source = Path(args.source)
    if not source.is_file():
        raise ConfigError([ConfigIssue("--source", None, "source", f"video file not found: {source}")])
    return source


def _run(args: argparse.Namespace) -> int:
    from agent.runtime.service import AgentService

    service = AgentService(load_config(args.config, args.overrides), config_path=args.config, overrides=args.overrides)
    service.install_signal_handlers()
    return service.run()


def _replay(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    camera = select_camera(config, args.camera)
    source = _clip(args)
    with ExitStack() as stack:
        out: TextIO = stack.enter_context(open(args.out, "w", encoding="utf-8")) if args.out else sys.stdout
        outbox, publisher = _publishing(config, stack) if args.publish else (None, None)
        annotate = _annotating(args, camera, source, stack) if args.annotate else None
        summary = replay_file(
            config,
            camera,
            source,
            dispatcher=dispatcher_from_config(config),
            start_utc=_start_time(args, source),
            detect_fps=args.detect_fps,
            store=JsonlStore(out, then=outbox),
            audit=AuditLog(config.policies.audit_log) if publisher else None,
            on_frame=_progress_bar(),
            on_picture=annotate,
            max_frames=_max_frames(args),
        )
        if publisher is not None and not publisher.flush(max(30.0, config.mqtt.connect_timeout_s)):
            brokers = ", ".join(str(b) for b in config.mqtt.broker_addresses)
            raise AgentError(f"replay: not every message was acknowledged by the broker ({brokers})")
    _print_summary(summary, sys.stdout if args.out else sys.stderr)
    return 0


def _max_frames(args: argparse.Namespace) -> int | None:
    max_frames: int | None = args.max_frames
    if max_frames is not None and max_frames < 1:
        raise ConfigError([ConfigIssue("--max-frames", None, "max-frames", "must be 1 or more")])
    return max_frames


def _annotating(
    args: argparse.Namespace, camera: CameraConfig, source: Path, stack: ExitStack
) -> Callable[[Frame, FrameResult, CameraPipeline], None]:
    """An on_picture hook that writes the annotated video, opened at the first frame."""
    from agent.integrator.annotate import ClipAnnotator

    detect_fps = camera.detect_fps if args.detect_fps is None else args.detect_fps
    fps = min(_stream_fps(source), detect_fps) if detect_fps else _stream_fps(source)
    holder: list[ClipAnnotator] = []

    def draw(frame: Frame, result: FrameResult, pipeline: CameraPipeline) -> None:
        if not holder:
            holder.append(stack.enter_context(ClipAnnotator(args.annotate, camera, pipeline.class_names, fps)))
        holder[0].update(frame, result, pipeline.line_counts)

    return draw


def _stream_fps(source: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(source))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()
    return fps if fps > 0 else 25.0  # the fallback FileReplay uses when a container states no rate


def _publishing(config: SiteConfig, stack: ExitStack) -> tuple[OutboxStore, MqttPublisher]:
    """The site's outbox as a message store, and a connected publisher draining it (`replay --publish`)."""
    outbox = stack.enter_context(Outbox(config.outbox))
    publisher = stack.enter_context(MqttPublisher(config.mqtt, config.site.id, outbox))
    publisher.wait_connected(config.mqtt.connect_timeout_s)
    return OutboxStore(outbox, default_expiry_s=config.mqtt.message_expiry_s), publisher


def _detect(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    camera = select_camera(config, args.camera)
    source = _clip(args)
    progress = _progress_bar()
    with open(args.out, "w", encoding="utf-8") as out:

        def write(result: FrameResult, total: int) -> None:
            progress(result, total)
            out.write(_format_tracks(result, args.format))

        summary = replay_file(
            config,
            camera,
            source,
            dispatcher=dispatcher_from_config(config),
            start_utc=_start_time(args, source),
            detect_fps=args.detect_fps,
            on_frame=write,
            max_frames=_max_frames(args),
        )
    _print_summary(summary, sys.stdout)
    return 0


def _format_tracks(result: FrameResult, fmt: str) -> str:
    t = result.tracks
    frame = result.frame_index + 1
    if fmt == "mot":
        return "".join(
            f"{frame},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1\n"
            for (x1, y1, x2, y2), score, tid in zip(
                t.box_xyxy_px.tolist(), t.score.tolist(), t.track_id.tolist(), strict=False
            )
        )
    objects = [
        {
            "track_id": int(tid),
            "class_id": int(cid),
            "score": round(float(s), 4),
            "box_xyxy_px": [round(float(v), 2) for v in box],
        }
        for box, s, cid, tid in zip(t.box_xyxy_px, t.score, t.class_id, t.track_id, strict=False)
    ]
    return json.dumps({"frame": frame, "objects": objects}, separators=(",", ":")) + "\n"


def _progress_bar() -> Callable[[FrameResult, int], None]:
    """A one-line progress bar on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        return lambda result, total: None

    def show(result: FrameResult, total: int) -> None:
        done = result.frame_index + 1
        if total <= 0 or (done % 10 and done != total):
            return
        width = 30
        filled = int(width * min(done, total) / total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] frame {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _print_summary(s: ReplaySummary, out: TextIO) -> None:
    rows = [
        ("camera", s.camera_id),
        ("source", s.source),
        ("frames decoded", f"{s.frames_decoded} ({s.stream_fps:g} fps)"),
        ("frames damaged (skipped)", str(s.frames_damaged)),
        ("frames processed", str(s.frames_processed)),
        ("frames sent to the detector", str(s.frames_detected)),
        ("incidents", str(s.incidents)),
        ("alerts start/update/end", "/".join(str(s.alerts_by_phase.get(p, 0)) for p in ("start", "update", "end"))),
        ("messages written", str(s.messages)),
        ("time", f"{s.elapsed_s:.1f} s ({s.processed_fps:.1f} frames/s)"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nreplay summary", file=out)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}", file=out)
