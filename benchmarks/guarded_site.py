"""The guarded-site workload: 16 cameras of one box, most of them watching nothing, as video files.

A guarded site at night is mostly still pictures: 12 of its 16 cameras are
idle and 4 are busy. Every camera is a video file at 640x360, 15 fps, that
the agent reads like a camera (a file source, looped, played at its own
rate by the live reader), written once per seed and duration under
`.cache/guarded-site/<seed>-<duration>s/` with a `site.json` describing it.

An idle camera (`cam-00`.. with kind `idle`) is built from a real clip of
../shared/assets/videos:

- background: the per-pixel median of 60 frames spread over a clip (the
  moving people vanish), cut to 16:9 at a seeded zoom and offset, sometimes
  mirrored, so no two cameras show the same picture;
- sensor noise: Gaussian, sigma 1.5-3 grey levels per camera, independent
  per pixel (a bank of 32 seeded noise fields, drawn at random per frame);
- light: a slow gain drift, 1 +- 3-6% over a 40-120 s period (clouds,
  dusk), far too slow for the motion gate to see;
- now and then a person walking through: a real walker of PETS09-S2L1 (its
  ground-truth boxes over 40+ consecutive frames, so the gait is real),
  cut out by its difference to that clip's median background (a soft mask,
  not a rectangle), scaled to 100-170 px tall and moved across the frame
  at a walker's pace (about 0.8 of its height per second: 5-10 s), left
  to right or back; on average one walk per
  `WALK_EVERY_S`, never in the first `QUIET_START_S` (the camera has time
  to fall idle) nor the last 4 s;
- compression: each frame goes through JPEG at a seeded quality 55-85
  (`cv2.imencode`), then the file is MPEG-4 part 2 (`mp4v`, inter-coded
  like a camera's H.264; this OpenCV build has no H.264 encoder), so a
  still picture costs little to decode, as on a real stream.

A busy camera (kind `busy`) is a real clip with people (PETS09, TUD, the
Intel samples), cut to 16:9, resampled in time to 15 fps and looped to the
duration. `site.json` lists each camera's file, kind, source clip and its
walks (start and end in seconds of file time), so a benchmark knows when an
idle camera has something to see. The same seed and duration always give
the same files.

    python -m benchmarks.guarded_site [--seed 1] [--duration-s 40]
"""

from __future__ import annotations

__all__ = ["CameraClip", "GuardedSite", "Walk", "build_site", "main"]

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
ASSETS = (REPO / ".." / "shared" / "assets").resolve()
SIZE_WH = (640, 360)
FPS = 15.0
CAMERAS, BUSY = 16, 4
WALK_EVERY_S = 45.0
QUIET_START_S = 12.0
# Backgrounds of the idle cameras: (clip, zoom range, vertical place range). Only clips whose median
# is empty: in the others people stand still for most of the clip and stay in it. TUD keeps its lower
# part (the square), above which two people wait through the whole clip.
BACKGROUNDS = (
    ("videos/vtest.avi", (1.0, 1.4), (0.0, 1.0)),
    ("videos/intel/person-bicycle-car-detection.gif", (1.0, 1.4), (0.0, 1.0)),
    ("videos/TUD-Stadtmitte/TUD-Stadtmitte.mp4", (1.5, 1.7), (1.0, 1.0)),
)
# The busy cameras' clips: real people walking.
BUSY_CLIPS = (
    "videos/vtest.avi",
    "videos/TUD-Stadtmitte/TUD-Stadtmitte.mp4",
    "videos/intel/one-by-one-person-detection.mp4",
    "videos/intel/worker-zone-detection.gif",
)
WALKERS = ("videos/vtest.avi", "videos/PETS09-S2L1/gt/gt.txt")


@dataclass(frozen=True, slots=True)
class Walk:
    """A person crossing an idle camera, in seconds of file time."""

    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class CameraClip:
    """One camera of the site: its file, whether it is idle or busy, what it was made from."""

    camera_id: str
    path: Path
    kind: str  # "idle" | "busy"
    source: str
    walks: tuple[Walk, ...] = ()


@dataclass(frozen=True, slots=True)
class GuardedSite:
    """The whole workload: cameras in order (every fourth one busy), seed and duration."""

    seed: int
    duration_s: float
    cameras: tuple[CameraClip, ...]

    def first(self, count: int) -> tuple[CameraClip, ...]:
        """The first `count` cameras (one busy in four, as in the whole site)."""
        return self.cameras[:count]


def _frames(rel: str, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(ASSETS / rel))
    out = []
    ok, image = cap.read()
    while ok and (limit is None or len(out) < limit):
        out.append(image)
        ok, image = cap.read()
    cap.release()
    if not out:
        raise SystemExit(f"cannot read {ASSETS / rel}")
    return out


def _clip_fps(rel: str) -> float:
    cap = cv2.VideoCapture(str(ASSETS / rel))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    cap.release()
    return fps if math.isfinite(fps) and 0 < fps <= 60 else 10.0


def _median(frames: list[np.ndarray], samples: int = 60) -> np.ndarray:
    step = max(1, len(frames) // samples)
    return np.median(np.stack(frames[::step]), axis=0).astype(np.uint8)


def _to_16_9(image: np.ndarray, zoom: float = 1.0, at: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
    """A 16:9 cut of `image` (`zoom` >= 1 cuts closer, `at` places it), resized to SIZE_WH."""
    h, w = image.shape[:2]
    cw = min(w, h * 16 / 9) / zoom
    ch = cw * 9 / 16
    x0, y0 = int((w - cw) * at[0]), int((h - ch) * at[1])
    return cv2.resize(image[y0 : y0 + int(ch), x0 : x0 + int(cw)], SIZE_WH, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True, slots=True)
class _Walker:
    """A real walker's cut-outs (BGR) and soft masks (float 0-1), one per source frame."""

    pictures: tuple[np.ndarray, ...]
    masks: tuple[np.ndarray, ...]


def _alone(rows: np.ndarray, row: np.ndarray) -> bool:
    """Whether the ground-truth box `row` overlaps no other box of its frame."""
    others = rows[(rows[:, 0] == row[0]) & (rows[:, 1] != row[1])]
    x, y, w, h = row[2:6]
    return not np.any(
        (others[:, 2] < x + w)
        & (others[:, 2] + others[:, 4] > x)
        & (others[:, 3] < y + h)
        & (others[:, 3] + others[:, 5] > y)
    )


def _walkers() -> list[_Walker]:
    """Walkers of PETS09-S2L1 seen alone over 40+ consecutive frames, cut out from the median background."""
    frames = _frames(WALKERS[0])
    background = _median(frames).astype(np.int16)
    rows = np.loadtxt(ASSETS / WALKERS[1], delimiter=",", ndmin=2)
    walkers = []
    for track in sorted({int(r[1]) for r in rows}):
        own = rows[rows[:, 1] == track]
        own = own[np.argsort(own[:, 0])]
        run = own[: np.argmax(np.diff(own[:, 0], append=own[-1, 0] + 2) != 1) + 1]
        alone = [_alone(rows, r) for r in run]
        run = run[: alone.index(False)] if False in alone else run
        if len(run) < 40 or np.median(run[:, 5]) < 70:
            continue
        pictures, masks = [], []
        for frame_no, _, x, y, w, h, *_ in run[:60]:
            x0, y0 = max(0, int(x) - 2), max(0, int(y) - 2)
            x1, y1 = min(768, int(x + w) + 2), min(576, int(y + h) + 2)
            cut = frames[int(frame_no) - 1][y0:y1, x0:x1]
            diff = np.abs(cut.astype(np.int16) - background[y0:y1, x0:x1]).sum(axis=2)
            mask = cv2.morphologyEx((diff > 45).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
            pictures.append(cut)
            masks.append(cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 0))
        walkers.append(_Walker(tuple(pictures), tuple(masks)))
        if len(walkers) == 8:
            break
    return walkers


def _walks(rng: np.random.Generator, duration_s: float, walkers: int) -> list[tuple[Walk, int, int, bool, int]]:
    """(walk, walker, height px, leftward, foot row) for each walk of one camera."""
    walks: list[tuple[Walk, int, int, bool, int]] = []
    t = QUIET_START_S + rng.uniform(0, WALK_EVERY_S / 2)
    while True:
        height = int(rng.integers(100, 171))
        # A walker's pace: about 1.4 m/s for 1.7 m of height, give or take a fifth.
        speed = 0.82 * height * rng.uniform(0.8, 1.2)
        length = (SIZE_WH[0] + 0.45 * height) / speed
        if t + length > duration_s - 4.0:
            return walks
        walk = Walk(round(t, 2), round(t + length, 2))
        walks.append((walk, int(rng.integers(walkers)), height, bool(rng.integers(2)), int(rng.integers(230, 356))))
        t += length + rng.exponential(WALK_EVERY_S)


def _paste(image: np.ndarray, walker: _Walker, index: int, height: int, x: float, foot_y: int, mirror: bool) -> None:
    picture, mask = walker.pictures[index], walker.masks[index]
    scale = height / picture.shape[0]
    size = (max(1, int(picture.shape[1] * scale)), height)
    picture, mask = cv2.resize(picture, size), cv2.resize(mask, size)
    if mirror:
        picture, mask = picture[:, ::-1], mask[:, ::-1]
    x0, y0 = int(x), foot_y - height
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(SIZE_WH[0], x0 + size[0]), min(SIZE_WH[1], foot_y)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    alpha = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0, None]
    part = picture[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    region = image[fy0:fy1, fx0:fx1]
    image[fy0:fy1, fx0:fx1] = (region * (1 - alpha) + part * alpha).astype(np.uint8)


def _writer(path: Path) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*"mp4v"), FPS, SIZE_WH)
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write {path} (mp4v)")
    return writer


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else image


def _idle_camera(path: Path, seed: int, index: int, duration_s: float, walkers: list[_Walker]) -> CameraClip:
    rng = np.random.default_rng([seed, index])
    source, zoom, place_y = BACKGROUNDS[index % len(BACKGROUNDS)]
    background = _to_16_9(_median(_frames(source, 400)), rng.uniform(*zoom), (rng.uniform(), rng.uniform(*place_y)))
    if rng.uniform() < 0.5:
        background = np.ascontiguousarray(background[:, ::-1])
    sigma, quality = rng.uniform(1.5, 3.0), int(rng.integers(55, 86))
    noise = [rng.normal(0, sigma, (*SIZE_WH[::-1], 3)).astype(np.float32) for _ in range(32)]
    drift, period, phase = rng.uniform(0.03, 0.06), rng.uniform(40, 120), rng.uniform(0, 2 * math.pi)
    plans = _walks(rng, duration_s, len(walkers))
    base = background.astype(np.float32)
    writer = _writer(path)
    for n in range(int(duration_s * FPS)):
        t = n / FPS
        gain = 1.0 + drift * math.sin(2 * math.pi * t / period + phase)
        image = np.clip(base * gain + noise[int(rng.integers(32))], 0, 255).astype(np.uint8)
        for walk, which, height, leftward, foot_y in plans:
            walker = walkers[which]
            if walk.start_s <= t < walk.end_s:
                share = (t - walk.start_s) / (walk.end_s - walk.start_s)
                width = height * walker.pictures[0].shape[1] / walker.pictures[0].shape[0]
                x = -width + share * (SIZE_WH[0] + width)
                step = int((t - walk.start_s) * 10) % (2 * len(walker.pictures) - 2)  # the gait at PETS' 10 fps
                frame = step if step < len(walker.pictures) else 2 * len(walker.pictures) - 2 - step
                _paste(image, walker, frame, height, SIZE_WH[0] - width - x if leftward else x, foot_y, leftward)
        writer.write(_jpeg(image, quality))
    writer.release()
    return CameraClip(path.stem, path, "idle", source, tuple(p[0] for p in plans))


def _busy_camera(path: Path, seed: int, index: int, duration_s: float) -> CameraClip:
    rng = np.random.default_rng([seed, index])
    source = BUSY_CLIPS[(index // 4) % len(BUSY_CLIPS)]
    frames, fps = _frames(source, 900), _clip_fps(source)
    quality = int(rng.integers(55, 86))
    writer = _writer(path)
    for n in range(int(duration_s * FPS)):
        writer.write(_jpeg(_to_16_9(frames[int(n / FPS * fps) % len(frames)]), quality))
    writer.release()
    return CameraClip(path.stem, path, "busy", source)


def _load(folder: Path) -> GuardedSite | None:
    index = folder / "site.json"
    if not index.is_file():
        return None
    doc = json.loads(index.read_text())
    cameras = tuple(
        CameraClip(c["camera_id"], folder / c["file"], c["kind"], c["source"], tuple(Walk(**w) for w in c["walks"]))
        for c in doc["cameras"]
    )
    if not all(c.path.is_file() for c in cameras):
        return None
    return GuardedSite(doc["seed"], doc["duration_s"], cameras)


def build_site(seed: int = 1, duration_s: float = 40.0, cache: Path | None = None) -> GuardedSite:
    """The site's 16 files for this seed and duration, written on first use (about a minute)."""
    folder = (cache or REPO / ".cache" / "guarded-site") / f"{seed}-{duration_s:g}s"
    site = _load(folder)
    if site is not None:
        return site
    folder.mkdir(parents=True, exist_ok=True)
    walkers = _walkers()
    cameras = []
    for i in range(CAMERAS):
        path = folder / f"cam-{i:02d}.mp4"
        busy = i % (CAMERAS // BUSY) == CAMERAS // BUSY - 1
        cameras.append(
            _busy_camera(path, seed, i, duration_s) if busy else _idle_camera(path, seed, i, duration_s, walkers)
        )
    site = GuardedSite(seed, duration_s, tuple(cameras))
    doc = {
        "seed": seed,
        "duration_s": duration_s,
        "cameras": [{**{k: v for k, v in asdict(c).items() if k != "path"}, "file": c.path.name} for c in site.cameras],
    }
    (folder / "site.json").write_text(json.dumps(doc, indent=1))
    return site


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration-s", type=float, default=40.0)
    args = parser.parse_args()
    site = build_site(args.seed, args.duration_s)
    for cam in site.cameras:
        walks = ", ".join(f"{w.start_s:.1f}-{w.end_s:.1f} s" for w in cam.walks) or "-"
        print(f"{cam.camera_id}  {cam.kind:<4}  {cam.source:<48}  walks: {walks}  {cam.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
