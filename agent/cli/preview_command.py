"""`edge-agent preview`: one frame of a camera with its zones, lines, masks and motion drawn on it."""

from __future__ import annotations

__all__ = ["register"]

import argparse
from pathlib import Path

import cv2

from agent.cli.options import add_config_options
from agent.config import load_config
from agent.errors import AgentError
from agent.integrator.preview import grab_frames, motion_overview, render_preview
from agent.runtime.clip_replay import select_camera


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "preview",
        help="draw a camera's zones, lines, masks and motion on one of its frames (PNG)",
        description=(
            "Grab a few frames from the camera's source (or --source), run its motion gate over "
            "them, and write the last frame with every zone, line (arrow p1->p2, side A on the "
            "left of it, side B on the right, arrows for the directions its rules count), mask and "
            "the motion regions found, each named, so a config can be checked by eye. The image is "
            "written only to --out."
        ),
    )
    add_config_options(parser)
    parser.add_argument("--camera", metavar="ID", help="camera to preview (default: the first enabled one)")
    parser.add_argument("--out", required=True, metavar="FILE.png", help="image to write (PNG or JPEG)")
    parser.add_argument("--source", metavar="FILE|URL", help="take frames from here instead of the camera's source")
    parser.add_argument(
        "--frames",
        type=int,
        default=30,
        metavar="N",
        help="frames grabbed for the motion overview (default: 30; the first few warm the gate up)",
    )
    parser.add_argument("--no-motion", action="store_true", help="draw the config only, no motion regions")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="how long to wait for a live camera's first frame (default: 10)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    camera = select_camera(config, args.camera)
    source = args.source if args.source is not None else camera.source
    count = 1 if args.no_motion else max(1, args.frames)
    images = grab_frames(source, count, camera_id=camera.id, timeout_s=args.timeout)
    motion = None if args.no_motion else motion_overview(camera, images)
    picture = render_preview(camera, images[-1], motion)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), picture):
        raise AgentError(f"cannot write {out} (use a .png or .jpg name)")
    h, w = picture.shape[:2]
    print(
        f"wrote {out} ({w}x{h}, camera {camera.id}, {len(camera.zones)} zone(s), {len(camera.lines)} line(s), "
        f"{len(camera.masks)} mask(s))"
    )
    return 0
