"""File replay: determinism, subsampling, damaged and unopenable files."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.errors import SourceError
from agent.sources import FileReplay, parse_source

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _take(replay: FileReplay, n: int) -> list:
    return list(islice(iter(replay), n))


def test_replay_is_deterministic(vtest_avi: Path) -> None:
    a = _take(FileReplay("gate", vtest_avi, start_utc=START), 30)
    b = _take(FileReplay("gate", vtest_avi, start_utc=START), 30)
    assert [f.frame_index for f in a] == list(range(30))
    assert [f.ts_utc for f in a] == [f.ts_utc for f in b]
    assert all(np.array_equal(x.image_bgr, y.image_bgr) for x, y in zip(a, b, strict=False))
    # vtest.avi is 10 fps: frame k sits at k/10 s of file time.
    assert a[25].ts_monotonic_s == pytest.approx(2.5)
    assert a[25].ts_utc == START + timedelta(seconds=2.5)
    assert a[0].camera_id == "gate" and a[0].size_wh == (768, 576)


def test_replay_subsamples_to_detect_fps(vtest_avi: Path) -> None:
    replay = FileReplay("gate", vtest_avi, detect_fps=4.0, start_utc=START)
    frames = _take(replay, 20)
    # 10 fps stream, 4 fps ticks at 0, .25, .5, .75 s: frames 0, 3, 5, 8, 10, 13, ...
    assert [f.frame_index for f in frames[:6]] == [0, 3, 5, 8, 10, 13]
    gaps = np.diff([f.ts_monotonic_s for f in frames])
    assert gaps.mean() == pytest.approx(0.25, abs=0.01)
    assert replay.stats.frames_dropped > 0


def test_whole_file_counts(vtest_avi: Path) -> None:
    replay = FileReplay("gate", vtest_avi, detect_fps=1.0)
    kept = sum(1 for _ in replay)
    s = replay.stats
    assert s.frames_read == 795 and s.frames_damaged == 0
    assert kept == 80 and s.frames_dropped == 795 - 80


def test_megamind_bugy_replays_whole(opencv_doc_dir: Path) -> None:
    # Measured: FFmpeg decodes all 270 frames of this file (it warns about its
    # packed B-frames); its "bug" is drawn into the picture, so nothing is lost.
    replay = FileReplay("lobby", opencv_doc_dir / "Megamind_bugy.avi")
    frames = [f.frame_index for f in replay]
    assert frames == list(range(270))
    assert replay.stats.frames_damaged == 0


def test_damaged_frames_are_skipped_and_counted(vtest_avi: Path, tmp_path: Path) -> None:
    # An MJPEG AVI whose frames 10, 11 and 20 have their JPEG data wiped: OpenCV
    # fails those reads in the middle of the file and continues after them.
    cap = cv2.VideoCapture(str(vtest_avi))
    path = tmp_path / "damaged.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    for _ in range(30):
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    data = bytearray(path.read_bytes())
    starts = [m.start() for m in re.finditer(b"\xff\xd8\xff", data)]
    assert len(starts) == 30
    for k in (10, 11, 20):
        data[starts[k] : starts[k] + 4000] = bytes(4000)
    path.write_bytes(bytes(data))

    replay = FileReplay("yard", path, start_utc=START)
    frames = list(replay)
    assert [f.frame_index for f in frames] == [i for i in range(30) if i not in (10, 11, 20)]
    assert frames[-1].ts_monotonic_s == pytest.approx(2.9)
    assert replay.stats.frames_damaged == 3 and replay.stats.frames_read == 27


def test_unopenable_path_names_camera_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=r"camera door: .*nope\.mp4"):
        list(FileReplay("door", missing))
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError) as err:
        list(FileReplay("door", junk))
    assert "camera door" in str(err.value) and "junk.avi" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("0", "usb", 0),
        (2, "usb", 2),
        ("rtsp://cam.local/stream", "rtsp", "rtsp://cam.local/stream"),
        ("https://cam/video.mjpg", "http", "https://cam/video.mjpg"),
        ("clips/yard.mp4", "file", "clips/yard.mp4"),
    ],
)
def test_parse_source(text: str | int, kind: str, target: str | int) -> None:
    spec = parse_source(text)
    assert (spec.kind, spec.target) == (kind, target)


def test_describe_hides_credentials() -> None:
    assert parse_source("rtsp://admin:secret@10.0.0.5/s1").describe() == "rtsp://***@10.0.0.5/s1"
