"""Tracker and motion-gate benchmark.

Tracker: ms per frame and MOTA/IDF1 on PETS09-S2L1 ground truth turned into
noisy detections (10% dropped, 3 px jitter, random false boxes) and on the
shipped detector's output, this tracker with the shipped settings beside
supervision's ByteTrack, and what `edge-agent detect` reports (tracker and
object filter); plus the Numba/NumPy kernel ratio.
Motion gate: ms per frame and share of frames with motion on the clips in
../shared/assets/videos. Prints tables.

    python benchmarks/bench_tracking.py [--assets ../shared/assets] [--max-frames 400]
"""

from __future__ import annotations

import argparse
import time
from itertools import islice
from pathlib import Path

import numpy as np

from agent.config import CameraConfig, DetectorConfig, TrackerConfig
from agent.detection.box_ops import iou_matrix
from agent.detection.box_ops import iou_matrix_numpy as iou_matrix_reference
from agent.evaluation.mot import MotSequence, evaluate_tracks, noisy_detections, read_mot
from agent.motion.gate import MotionGate, MotionSettings
from agent.runtime.assembly import detector_from_config, object_filter_settings, tracker_from_config
from agent.sources import FileReplay
from agent.tracking import ByteTracker
from agent.tracking.appearance import appearance_descriptors
from agent.tracking.assignment import (
    linear_assignment,
    linear_assignment_reference,
)
from agent.tracking.object_filter import ObjectFilter
from agent.values.detections import Detections, Tracks
from benchmarks.report import Section, Table

REPO = Path(__file__).resolve().parents[1]
FRAME_WH = (768, 576)


def _shipped_tracker() -> ByteTracker:
    """The tracker a site runs with the default `detector` and `tracker` sections."""
    return tracker_from_config(TrackerConfig(), detector=DetectorConfig())


Frames = list[tuple[int, Detections, np.ndarray]]  # (1-based frame, detections, their appearance descriptors)


def _run_ours(frames: Frames, fps: float, *, appearance: bool = True) -> tuple[dict[int, Tracks], float]:
    tracker = _shipped_tracker()
    tracker.update(frames[0][1], 0.0)  # compile / warm up
    tracker.reset()
    out, t0 = {}, time.perf_counter()
    for f, d, looks in frames:
        out[f] = tracker.update(d, f / fps, looks if appearance else None)
    return out, (time.perf_counter() - t0) * 1000 / len(frames)


def _run_ours_blind(frames: Frames, fps: float) -> tuple[dict[int, Tracks], float]:
    return _run_ours(frames, fps, appearance=False)


def _run_pipeline(frames: Frames, fps: float) -> tuple[dict[int, Tracks], float]:
    """Tracker then the default object filter: the confirmed tracks `edge-agent detect` writes."""
    tracker = _shipped_tracker()
    camera = CameraConfig(id="bench", source="vtest.avi")
    settings = object_filter_settings(camera, ("person",), FRAME_WH, tracker_min_hits=tracker.min_hits)
    object_filter = ObjectFilter(settings, FRAME_WH)
    out, t0 = {}, time.perf_counter()
    for f, d, looks in frames:
        out[f] = object_filter.update(tracker.update(d, f / fps, looks))
    return out, (time.perf_counter() - t0) * 1000 / len(frames)


def with_appearance(assets: Path, frames: list[tuple[int, Detections]]) -> Frames:
    """Each frame's detections with their appearance descriptors, from the frames of vtest.avi."""
    by_frame = dict(frames)
    out = []
    for frame in islice(FileReplay("bench", assets / "videos" / "vtest.avi"), frames[-1][0]):
        f = frame.frame_index + 1
        if f in by_frame:
            d = by_frame[f]
            out.append((f, d, appearance_descriptors(frame.image_bgr, d.box_xyxy_px)))
    return out


def _run_supervision(frames: Frames, fps: float) -> tuple[dict[int, Tracks], float]:
    import supervision as sv

    tracker = sv.ByteTrack(frame_rate=round(fps))
    out, elapsed = {}, 0.0
    for f, d, _ in frames:
        svd = sv.Detections(xyxy=d.box_xyxy_px.copy(), confidence=d.score.copy(), class_id=d.class_id.copy())
        t0 = time.perf_counter()
        res = tracker.update_with_detections(svd)
        elapsed += time.perf_counter() - t0
        assert res.confidence is not None and res.class_id is not None and res.tracker_id is not None
        out[f] = Tracks(res.xyxy, res.confidence, res.class_id, res.tracker_id)
    return out, elapsed * 1000 / len(frames)


def bench_tracker(assets: Path) -> None:
    gt = read_mot(assets / "videos" / "PETS09-S2L1" / "gt" / "gt.txt")
    frames = with_appearance(assets, list(noisy_detections(gt, seed=0)))
    print("\nTracker on PETS09-S2L1 (795 frames, gt + noise), 7 fps")
    print(f"{'tracker':<24}{'ms/frame':>10}{'MOTA':>8}{'IDF1':>8}{'IDsw':>6}{'FP':>6}{'FN':>6}")
    for name, run in (("agent ByteTracker", _run_ours), ("supervision ByteTrack", _run_supervision)):
        out, ms = run(frames, 7.0)
        s = evaluate_tracks(gt, out)
        print(f"{name:<24}{ms:>10.3f}{s.mota:>8.3f}{s.idf1:>8.3f}{s.id_switches:>6}{s.false_positives:>6}{s.misses:>6}")


def detector_frames(assets: Path, max_frames: int) -> list[tuple[int, Detections]]:
    """The shipped detector's person boxes on vtest.avi: YOLOX-Nano 416, decoded down to the
    tracker's `low_score`, as a site's detector hands them to its tracker."""
    out = []
    with detector_from_config(DetectorConfig(classes=["person"]), tracker=TrackerConfig()) as det:
        for frame in islice(FileReplay("bench", assets / "videos" / "vtest.avi"), max_frames):
            out.append((frame.frame_index + 1, det.detect(frame.image_bgr)))
    return out


def _tracker_rows(gt: MotSequence, frames: Frames, inputs: str) -> list[tuple]:  # type: ignore[type-arg]
    rows = []
    last = frames[-1][0]
    gt_cut = MotSequence({k: v for k, v in gt.frames.items() if k <= last}, last)
    runs = (
        ("agent ByteTracker", _run_ours),
        ("agent ByteTracker, appearance off (no re-linking)", _run_ours_blind),
        ("supervision ByteTrack", _run_supervision),
        ("agent detect output (tracker + object filter)", _run_pipeline),
    )
    for name, run in runs:
        out, ms = run(frames, 7.0)
        s = evaluate_tracks(gt_cut, out)
        rows.append((inputs, name, ms, s.mota, s.idf1, s.id_switches, s.false_positives, s.misses))
    return rows


def collect(quick: bool = False, assets: Path = REPO / ".." / "shared" / "assets") -> Section:
    """Both trackers (and the detect output) on noisy ground truth and on real detector output."""
    gt = read_mot(assets / "videos" / "PETS09-S2L1" / "gt" / "gt.txt")
    n = 200 if quick else gt.last_frame
    noisy = with_appearance(assets, [fd for fd in noisy_detections(gt, seed=0) if fd[0] <= n])
    real = with_appearance(assets, detector_frames(assets, n))
    rows = _tracker_rows(gt, noisy, "gt + noise") + _tracker_rows(gt, real, "YOLOX-Nano 416")
    table = Table(
        f"Trackers on PETS09-S2L1 / vtest.avi ({n} frames), same detections for each",
        ("detections", "tracker", "ms/frame", "MOTA", "IDF1", "ID switches", "FP", "FN"),
        tuple(rows),
        note="gt + noise: ground truth with 10% dropped, 3 px jitter and false boxes (seed 0). "
        "YOLOX-Nano 416: the shipped detector and tracker settings (boxes down to tracker.low_score; "
        "tracks start at detector.score_threshold). Appearance: the colour descriptors the pipeline "
        "hands the tracker for re-linking (computed beforehand, not timed). ms/frame: tracker update "
        "(and filter) only, mean over the sequence.",
        float_digits=3,
    )
    ours, sv, output = rows[4], rows[6], rows[7]
    return Section(
        "tracking",
        "Tracking: agent ByteTracker vs supervision ByteTrack",
        (table,),
        headline=(
            (
                "tracker on detector output: MOTA / IDF1 / ms (ours vs supervision)",
                f"{ours[3]:.3f} / {ours[4]:.3f} / {ours[2]:.2f} vs {sv[3]:.3f} / {sv[4]:.3f} / {sv[2]:.2f}",
            ),
            ("`edge-agent detect` output on detector output: MOTA / IDF1", f"{output[3]:.3f} / {output[4]:.3f}"),
        ),
    )


def _time(fn, *args, repeat: int = 200) -> float:  # type: ignore[no-untyped-def]
    fn(*args)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn(*args)
    return (time.perf_counter() - t0) * 1e6 / repeat


def bench_kernels() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 700, (40, 2))
    a = np.hstack([xy, xy + 60]).astype(np.float32)
    b = a + rng.normal(0, 5, a.shape).astype(np.float32)
    cost = rng.random((30, 30))
    print("\nKernels (40x40 IoU, 30x30 assignment), microseconds per call")
    print(f"{'kernel':<20}{'numba':>10}{'reference':>12}{'ratio':>8}")
    for name, fast, ref, args, n in (
        ("iou_matrix", iou_matrix, iou_matrix_reference, (a, b), 500),
        ("linear_assignment", linear_assignment, linear_assignment_reference, (cost,), 20),
    ):
        tf, tr = _time(fast, *args, repeat=n), _time(ref, *args, repeat=max(3, n // 20))
        print(f"{name:<20}{tf:>10.1f}{tr:>12.1f}{tr / tf:>8.1f}")


def bench_motion(assets: Path, max_frames: int) -> None:
    videos = assets / "videos"
    clips = [videos / "vtest.avi", *sorted((videos / "intel").glob("*.mp4")), *sorted((videos / "intel").glob("*.gif"))]
    print(f"\nMotion gate (on_motion, defaults), first {max_frames} frames per clip")
    print(f"{'clip':<38}{'size':>10}{'frames':>8}{'ms/frame':>10}{'motion%':>9}")
    for clip in clips:
        gate = MotionGate(MotionSettings(mode="on_motion"))
        elapsed, size = 0.0, ""
        for frame in islice(FileReplay("bench", clip), max_frames):
            t0 = time.perf_counter()
            gate.update(frame.image_bgr)
            elapsed += time.perf_counter() - t0
            size = "x".join(map(str, frame.size_wh))
        c = gate.counters
        share = 100.0 * c.frames_with_motion / max(c.frames_inspected, 1)
        print(
            f"{clip.name:<38}{size:>10}{c.frames_inspected:>8}{elapsed * 1000 / max(c.frames_inspected, 1):>10.3f}{share:>9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=REPO / ".." / "shared" / "assets")
    parser.add_argument("--max-frames", type=int, default=400)
    args = parser.parse_args()
    bench_tracker(args.assets)
    bench_kernels()
    bench_motion(args.assets, args.max_frames)


if __name__ == "__main__":
    main()
