"""Live source: newest-frame reader, reconnection against a real MJPEG server."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import pytest

from agent.backoff import Backoff
from agent.sources import CaptureTimeouts, LiveSource
from agent.values.frames import Frame
from tests.sources.mjpeg_server import MjpegServer, free_port, load_jpegs

FAST = CaptureTimeouts(open_timeout_s=2.0, read_timeout_s=2.0)
QUICK_RETRY = Backoff(initial_s=0.2, max_s=0.5)


def _wait_for(predicate, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def jpegs(vtest_avi: Path) -> list[bytes]:
    return load_jpegs(vtest_avi, 20)


def _take_slowly(src: LiveSource, count: int, period_s: float) -> list[Frame]:
    """A consumer that takes one frame every period_s."""
    taken: list[Frame] = []
    while len(taken) < count:
        time.sleep(period_s)
        frame = src.read(timeout_s=2.0)
        if frame is not None:
            taken.append(frame)
    return taken


def test_looped_file_skips_the_frames_a_lower_detect_rate_leaves_out(vtest_avi: Path) -> None:
    with LiveSource("gate", vtest_avi, detect_fps=2.0, timeouts=FAST) as src:
        assert any(t.name == "cam-gate.reader" for t in threading.enumerate())
        frames = _take_slowly(src, 3, 0.5)
        stats = src.stats
    assert [f.camera_id for f in frames] == ["gate"] * 3
    assert frames[0].frame_index < frames[1].frame_index < frames[2].frame_index
    # The file plays at 10 fps and the consumer takes 2 fps, as it said it would: the rest
    # are skipped by design, none dropped (that would read as an overloaded box).
    assert stats.available and stats.frames_rate_skipped >= 4 and stats.frames_dropped == 0
    assert stats.frames_read >= stats.frames_rate_skipped + 3
    assert not any(t.name == "cam-gate.reader" for t in threading.enumerate())


def test_a_consumer_slower_than_its_detect_rate_drops_frames(vtest_avi: Path) -> None:
    # It said 10 fps (every frame of the clip) but takes one frame every 0.5 s: too slow.
    with LiveSource("gate", vtest_avi, detect_fps=10.0, timeouts=FAST) as src:
        _take_slowly(src, 3, 0.5)
        stats = src.stats
    assert stats.frames_dropped >= 4
    assert stats.frames_read >= stats.frames_dropped + stats.frames_rate_skipped + 3


@pytest.fixture(scope="module")
def short_loop(vtest_avi: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 15 frames (1.5 s at 10 fps) of the walkway clip, to loop."""
    path = tmp_path_factory.mktemp("clips") / "loop.avi"
    cap = cv2.VideoCapture(str(vtest_avi))
    _, image = cap.read()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (image.shape[1], image.shape[0]))
    for _ in range(15):
        writer.write(image)
        _, image = cap.read()
    writer.release()
    cap.release()
    return path


def test_without_decode_all_the_frames_left_out_are_only_grabbed_and_a_file_still_loops(short_loop: Path) -> None:
    # An idle camera's consumer: 2 fps of a 10 fps file, and it says so.
    with LiveSource("idle", short_loop, detect_fps=2.0, timeouts=FAST) as src:
        src.decode_all = False
        frames = _take_slowly(src, 5, 0.5)
        stats = src.stats
    assert all(f.image_bgr.shape == (576, 768, 3) for f in frames)
    assert [f.frame_index for f in frames] == sorted({f.frame_index for f in frames})
    # 2.5 s of a 1.5 s file: it looped (a file's end is not an outage), and what was left out is counted.
    assert stats.frames_read >= 15 and stats.reconnects == 0 and stats.available
    assert stats.frames_rate_skipped >= 3 * len(frames) and stats.frames_dropped == 0
    assert stats.reader_cpu_s > 0


def test_reconnects_after_server_dies_while_only_grabbing(jpegs: list[bytes]) -> None:
    server = MjpegServer(jpegs, free_port()).start()
    with LiveSource("street", server.url, detect_fps=1.0, timeouts=FAST, backoff=QUICK_RETRY, seed=1) as src:
        src.decode_all = False
        assert src.read(timeout_s=5.0) is not None
        server.stop()
        assert _wait_for(lambda: not src.stats.available, 6.0), "a failed grab is an outage"
        server = MjpegServer(jpegs, server.port).start()
        try:
            assert _wait_for(lambda: src.stats.available, 8.0), "source never came back"
            assert src.read(timeout_s=5.0) is not None and src.stats.reconnects >= 1
        finally:
            server.stop()


def test_reconnects_after_server_dies(jpegs: list[bytes], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent")
    server = MjpegServer(jpegs, free_port()).start()
    with LiveSource("street", server.url, detect_fps=10.0, timeouts=FAST, backoff=QUICK_RETRY, seed=1) as src:
        first = src.read(timeout_s=5.0)
        assert first is not None and first.size_wh == (384, 288)
        assert src.stats.available

        server.stop()
        assert _wait_for(lambda: not src.stats.available, 6.0), "source never reported the outage"
        read_before = src.stats.frames_read

        server = MjpegServer(jpegs, server.port).start()
        try:
            assert _wait_for(lambda: src.stats.available, 8.0), "source never came back"
            resumed = src.read(timeout_s=5.0)
            assert resumed is not None and resumed.frame_index >= read_before
            assert src.stats.reconnects >= 1
        finally:
            server.stop()
    events = [r.getMessage() for r in caplog.records]
    assert any("event=camera_unavailable camera=street" in m for m in events)
    assert sum("event=camera_available camera=street" in m for m in events) >= 2


def test_stream_that_never_opens_reports_and_closes_promptly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent")
    url = f"http://127.0.0.1:{free_port()}/nothing.mjpg"
    src = LiveSource("ghost", url, timeouts=FAST, backoff=Backoff(initial_s=30.0, max_s=30.0)).start()
    assert src.read(timeout_s=1.5) is None
    assert _wait_for(lambda: any("camera_unavailable" in r.getMessage() for r in caplog.records), 5.0)
    assert not src.stats.available and src.stats.frames_read == 0
    started = time.monotonic()
    src.close()  # the reader sits in a 15-30 s backoff sleep here
    assert time.monotonic() - started < 5.0
    message = next(r.getMessage() for r in caplog.records if "camera_unavailable" in r.getMessage())
    assert "camera=ghost" in message and "reason=connection_refused" in message


def _frame_of_size(src: LiveSource, size_wh: tuple[int, int], timeout_s: float) -> Frame | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        frame = src.read(timeout_s=0.5)
        if frame is not None and frame.size_wh == size_wh:
            return frame
    return None


def test_a_camera_that_changes_resolution_keeps_delivering(
    jpegs: list[bytes], vtest_avi: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent")
    server = MjpegServer(jpegs, free_port()).start()
    try:
        with LiveSource("porch", server.url, detect_fps=10.0, timeouts=FAST, backoff=QUICK_RETRY, seed=1) as src:
            first = src.read(timeout_s=5.0)
            assert first is not None and first.size_wh == (384, 288)
            # The installer switches the camera to VGA in its web page; the stream goes on.
            server.serve(load_jpegs(vtest_avi, 20, (640, 480)))
            larger = _frame_of_size(src, (640, 480), 10.0)
            assert larger is not None, f"no 640x480 frame after the change: {src.stats}"
            assert _frame_of_size(src, (640, 480), 5.0) is not None, "the new size came once, then stopped"
            stats = src.stats
    finally:
        server.stop()
    assert stats.available and stats.frames_damaged == 0
    changes = [r.getMessage() for r in caplog.records if "event=camera_resolution_changed" in r.getMessage()]
    assert changes == ["event=camera_resolution_changed camera=porch old_wh=384x288 new_wh=640x480"]
