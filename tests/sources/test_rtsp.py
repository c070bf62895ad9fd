"""RTSP cameras: a real RTSP server (gst-rtsp-server, H.264 over RTP) on loopback, serving vtest.avi."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.backoff import Backoff
from agent.sources import CaptureTimeouts, LiveSource
from agent.values.frames import Frame
from tests.sources.mjpeg_server import free_port
from tests.sources.rtsp_server import RtspServer, write_frames

TIMEOUTS = CaptureTimeouts(open_timeout_s=5.0, read_timeout_s=3.0)
QUICK_RETRY = Backoff(initial_s=0.2, max_s=1.0)
SERVED_WH = (384, 288)


@pytest.fixture(scope="module")
def clip_frames(vtest_avi: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_frames(vtest_avi, tmp_path_factory.mktemp("rtsp-frames"), 50, SERVED_WH)


@pytest.fixture
def rtsp(clip_frames: Path) -> Iterator[RtspServer]:
    with RtspServer(clip_frames) as server:
        yield server


def _wait_for(predicate, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _take(src: LiveSource, count: int, deadline_s: float) -> list[Frame]:
    frames: list[Frame] = []
    deadline = time.monotonic() + deadline_s
    while len(frames) < count and time.monotonic() < deadline:
        frame = src.read(timeout_s=1.0)
        if frame is not None:
            frames.append(frame)
    return frames


def _unavailable_lines(caplog: pytest.LogCaptureFixture, camera: str) -> list[str]:
    return [m for r in caplog.records if f"event=camera_unavailable camera={camera} " in (m := r.getMessage())]


def test_frames_of_the_clip_arrive_over_tcp(rtsp: RtspServer, clip_frames: Path) -> None:
    with LiveSource("gate", rtsp.url, detect_fps=10.0, timeouts=TIMEOUTS) as src:
        frames = _take(src, 30, 60.0)
        stats = src.stats
    assert len(frames) == 30, f"only {len(frames)} frames arrived: {stats}"
    assert all(f.size_wh == SERVED_WH and f.camera_id == "gate" for f in frames)
    assert [f.frame_index for f in frames] == sorted({f.frame_index for f in frames})
    assert stats.available and stats.frames_damaged == 0
    # The pictures are the clip's (H.264 at its default quality: within a few grey levels).
    served = [cv2.imread(str(p)).astype(np.int16) for p in sorted(clip_frames.glob("frame*.jpg"))]
    for frame in frames[::10]:
        error = min(float(np.abs(frame.image_bgr.astype(np.int16) - s).mean()) for s in served)
        assert error < 6.0, f"frame {frame.frame_index} is not a frame of the clip (mean error {error:.1f})"
    # UDP loses packets on busy site networks; the agent asks for RTP interleaved in the RTSP TCP connection.
    assert rtsp.transports(), "the server saw no SETUP"
    assert all(t.startswith("RTP/AVP/TCP") for t in rtsp.transports()), rtsp.transports()


def test_server_outage_is_reported_and_the_stream_reconnects(
    rtsp: RtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent")
    with LiveSource("yard", rtsp.url, detect_fps=10.0, timeouts=TIMEOUTS, backoff=QUICK_RETRY, seed=3) as src:
        assert len(_take(src, 5, 60.0)) == 5
        rtsp.kill()
        assert _wait_for(lambda: not src.stats.available, 15.0), "the outage was never reported"
        src.read(timeout_s=0.0)  # a frame from before the outage the consumer had not taken yet
        read_before = src.stats.frames_read
        time.sleep(3.0)  # the camera stays down across several retries
        rtsp.start()
        assert _wait_for(lambda: src.stats.available, 30.0), "the stream never came back"
        resumed = _take(src, 5, 30.0)
        stats = src.stats
    assert len(resumed) == 5 and resumed[0].frame_index >= read_before
    assert stats.reconnects == 1
    lines = _unavailable_lines(caplog, "yard")
    assert len(lines) == 1, lines
    assert "reason=read_failed" in lines[0] and "retry_in_s=" in lines[0]
    available = [r for r in caplog.records if "event=camera_available camera=yard" in r.getMessage()]
    assert len(available) == 2


@pytest.mark.parametrize(
    ("where", "reason", "detail"),
    [
        ("wrong_path", "not_found", "RTSP 404"),
        ("refused", "connection_refused", "connection refused"),
    ],
)
def test_a_stream_that_cannot_open_is_one_clear_line(
    rtsp: RtspServer, where: str, reason: str, detail: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent")
    url = (
        f"rtsp://127.0.0.1:{rtsp.port}/no-such-stream" if where == "wrong_path" else f"rtsp://127.0.0.1:{free_port()}/s"
    )
    with LiveSource("door", url, timeouts=TIMEOUTS, backoff=QUICK_RETRY, seed=4) as src:
        assert _wait_for(lambda: bool(_unavailable_lines(caplog, "door")), 15.0)
        time.sleep(2.5)  # several retries at 0.1-1 s
        stats = src.stats
    assert not stats.available and stats.frames_read == 0
    lines = _unavailable_lines(caplog, "door")
    assert len(lines) == 1, f"one line for a camera that keeps failing the same way: {lines}"
    assert f"reason={reason}" in lines[0] and detail in lines[0], lines[0]


def test_a_camera_restarted_at_another_resolution_comes_back_at_it(
    clip_frames: Path, vtest_avi: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent")
    vga = write_frames(vtest_avi, tmp_path / "vga", 20, (640, 480))
    server = RtspServer(clip_frames).start()
    try:
        with LiveSource("lane", server.url, detect_fps=10.0, timeouts=TIMEOUTS, backoff=QUICK_RETRY, seed=5) as src:
            first = _take(src, 1, 60.0)
            assert first and first[0].size_wh == SERVED_WH
            # An installer picks the camera's VGA profile: the camera restarts its stream at the new size.
            server.kill()
            assert _wait_for(lambda: not src.stats.available, 15.0), "the outage was never reported"
            src.read(timeout_s=0.0)  # a frame from before the restart the consumer had not taken yet
            server = RtspServer(vga, port=server.port).start()
            assert _wait_for(lambda: src.stats.reconnects == 1, 30.0), "the stream never came back"
            after = _take(src, 5, 30.0)
            stats = src.stats
    finally:
        server.kill()
    assert [f.size_wh for f in after] == [(640, 480)] * 5
    assert stats.frames_damaged == 0
    changes = [r.getMessage() for r in caplog.records if "event=camera_resolution_changed" in r.getMessage()]
    assert changes == ["event=camera_resolution_changed camera=lane old_wh=384x288 new_wh=640x480"]
