"""A still picture of one camera's config over its own image, for checking by eye.

`grab_frames` takes a few frames from the camera's source (a file is read
from its start; a live stream through `LiveSource` with a timeout, failing
clearly when nothing arrives), `motion_overview` runs the camera's motion
gate over them, and `render_preview` draws masks, motion, zones and lines
(with direction and A/B sides) onto the last frame.
"""

from __future__ import annotations

__all__ = ["MotionOverview", "grab_frames", "motion_overview", "render_preview"]

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from agent.config import CameraConfig
from agent.errors import SourceError
from agent.integrator.drawing import (
    MOTION_BGR,
    draw_label,
    draw_line,
    draw_mask,
    draw_motion_regions,
    draw_zone,
    scene_shapes,
)
from agent.motion.gate import MotionGate
from agent.runtime.assembly import motion_settings
from agent.sources.capture import CaptureTimeouts
from agent.sources.file_replay import FileReplay
from agent.sources.live import LiveSource
from agent.sources.spec import parse_source


@dataclass(frozen=True, slots=True)
class MotionOverview:
    """What the motion gate found over the preview frames.

    Attributes:
        regions_xyxy_px: (n, 4) float32 motion regions of every compared frame, frame pixels.
        frames_compared: frames compared with a background (after the gate's warm-up).
        analysed_wh: size of the downscaled luma image the gate compares.
    """

    regions_xyxy_px: np.ndarray
    frames_compared: int
    analysed_wh: tuple[int, int]


def grab_frames(source: str | int | Path, count: int, *, camera_id: str, timeout_s: float = 10.0) -> list[np.ndarray]:
    """Up to `count` consecutive BGR frames from the start of a file or from a live stream.

    Raises:
        SourceError: no frame could be read (missing file, unreachable camera, timeout).
    """
    if count < 1:
        raise SourceError(f"camera {camera_id}: at least one preview frame is needed, got {count}")
    spec = parse_source(source)
    if spec.is_file:
        images = []
        for frame in FileReplay(camera_id, Path(str(spec.target))):
            images.append(frame.image_bgr)
            if len(images) >= count:
                break
        return images
    return _grab_live(source, count, camera_id, timeout_s)


def _grab_live(source: str | int | Path, count: int, camera_id: str, timeout_s: float) -> list[np.ndarray]:
    images: list[np.ndarray] = []
    timeouts = CaptureTimeouts(open_timeout_s=timeout_s, read_timeout_s=timeout_s)
    deadline = time.monotonic() + timeout_s
    with LiveSource(camera_id, source, detect_fps=30.0, timeouts=timeouts) as live:
        while len(images) < count:
            # The first frame gets the whole timeout (opening a stream is slow); later ones are quick.
            remaining = deadline - time.monotonic() if not images else 2.0
            frame = live.read(max(0.0, remaining))
            if frame is None:
                break
            images.append(frame.image_bgr)
    if not images:
        where = live.spec.describe()
        raise SourceError(f"camera {camera_id}: no frame from {where} within {timeout_s:g} s")
    return images


def motion_overview(camera: CameraConfig, images: list[np.ndarray]) -> MotionOverview:
    """Run the camera's motion gate (its settings and masks) over consecutive frames."""
    h, w = images[0].shape[:2]
    gate = MotionGate(motion_settings(camera, (w, h)))
    regions: list[np.ndarray] = []
    for index, image in enumerate(images):
        result = gate.update(image)
        if index >= gate.settings.warmup_frames:  # warm-up frames report the whole frame
            regions.append(result.regions_xyxy_px)
    small_h = gate.settings.frame_height_px
    analysed = (max(1, round(w * small_h / h)), small_h)
    compared = len(regions)
    return MotionOverview(np.concatenate(regions) if regions else np.zeros((0, 4), np.float32), compared, analysed)


def _draw_grid_ticks(canvas_bgr: np.ndarray, analysed_wh: tuple[int, int], every_cells: int = 10) -> None:
    """Ticks along the top and left edges every `every_cells` cells of the gate's downscaled grid."""
    h, w = canvas_bgr.shape[:2]
    sx, sy = w / analysed_wh[0], h / analysed_wh[1]
    for i in range(0, analysed_wh[0] + 1, every_cells):
        x = min(round(i * sx), w - 1)
        cv2.line(canvas_bgr, (x, 0), (x, 6), MOTION_BGR, 1)
    for j in range(0, analysed_wh[1] + 1, every_cells):
        y = min(round(j * sy), h - 1)
        cv2.line(canvas_bgr, (0, y), (6, y), MOTION_BGR, 1)


def render_preview(camera: CameraConfig, image_bgr: np.ndarray, motion: MotionOverview | None = None) -> np.ndarray:
    """A copy of the frame with the camera's masks, motion, zones and lines drawn and named."""
    canvas = image_bgr.copy()
    h, w = canvas.shape[:2]
    shapes = scene_shapes(camera, (w, h))
    for mask in shapes.masks:
        draw_mask(canvas, mask)
    legend = f"camera {camera.id}  {w}x{h}  motion: {camera.motion.mode}"
    if motion is not None:
        draw_motion_regions(canvas, motion.regions_xyxy_px)
        _draw_grid_ticks(canvas, motion.analysed_wh)
        aw, ah = motion.analysed_wh
        legend += f" (grid {aw}x{ah}, {len(motion.regions_xyxy_px)} regions in {motion.frames_compared} frames)"
    for zone in shapes.zones:
        draw_zone(canvas, zone)
    for line in shapes.lines:
        draw_line(canvas, line)
    draw_label(canvas, legend, (10, h - 24), (255, 255, 255))
    return canvas
