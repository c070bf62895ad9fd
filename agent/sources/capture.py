"""Opening an OpenCV capture for a source spec: network timeouts, RTSP over TCP, quiet native logs.

FFmpeg and OpenCV print their own messages to stderr (a 404, a refused
connection, "backend can't be used to capture by name") on every retry, as
unstructured lines next to the agent's key=value log. The agent explains a
failure itself (`agent.sources.open_failure`), once, so their console output
is turned down before the first capture opens; setting `OPENCV_FFMPEG_LOGLEVEL`
(FFmpeg's levels: 32 info, 48 debug) or `OPENCV_LOG_LEVEL` brings it back.
"""

from __future__ import annotations

__all__ = ["CaptureTimeouts", "open_capture", "quiet_native_logs", "read_jpeg_packets"]

import os
import threading
from dataclasses import dataclass

import cv2

from agent.sources.spec import SourceSpec

# OPENCV_FFMPEG_CAPTURE_OPTIONS is read by OpenCV when a capture opens, so it is
# set and restored under a lock: several cameras may open on different threads.
_ENV_LOCK = threading.Lock()
_FFMPEG_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
# Read by OpenCV once, when FFmpeg is first used in the process. 8 is AV_LOG_FATAL.
_FFMPEG_LOGLEVEL_ENV = "OPENCV_FFMPEG_LOGLEVEL"
_FFMPEG_FATAL_ONLY = "8"
_OPENCV_LOGLEVEL_ENV = "OPENCV_LOG_LEVEL"
_MJPEG_FOURCC = int.from_bytes(b"MJPG", "little")
_quieted = False


@dataclass(frozen=True, slots=True)
class CaptureTimeouts:
    """Network timeouts; a dead camera must fail a read, not hang the reader.

    Attributes:
        open_timeout_s: longest wait for a stream to open.
        read_timeout_s: longest wait for one frame on an open stream.
    """

    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0


def _ffmpeg_options(spec: SourceSpec, timeouts: CaptureTimeouts) -> str:
    # `timeout` is in microseconds for both the RTSP and HTTP protocols of FFmpeg.
    options = [f"timeout;{int(timeouts.read_timeout_s * 1e6)}"]
    if spec.kind == "rtsp":
        # TCP: UDP loses packets on busy site networks and smears whole frames.
        options.insert(0, "rtsp_transport;tcp")
    return "|".join(options)


def quiet_native_logs() -> None:
    """Turn FFmpeg's and OpenCV's console messages down, unless the operator set their levels."""
    global _quieted
    with _ENV_LOCK:
        if _quieted:
            return
        _quieted = True
        os.environ.setdefault(_FFMPEG_LOGLEVEL_ENV, _FFMPEG_FATAL_ONLY)
        if _OPENCV_LOGLEVEL_ENV not in os.environ:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def read_jpeg_packets(spec: SourceSpec, cap: cv2.VideoCapture) -> bool:
    """Switch an open MJPEG network stream to raw packets (whole JPEG pictures); True if switched.

    OpenCV scales every decoded picture to the size the stream opened with,
    so a camera whose resolution changes mid-stream would come out stretched
    to its old size, and the change would never be seen. Each JPEG packet
    states its own size: decoded by `cv2.imdecode`, a picture keeps it.
    """
    if spec.kind not in ("rtsp", "http") or int(cap.get(cv2.CAP_PROP_FOURCC)) != _MJPEG_FOURCC:
        return False
    return bool(cap.set(cv2.CAP_PROP_FORMAT, -1))


def open_capture(spec: SourceSpec, timeouts: CaptureTimeouts | None = None) -> cv2.VideoCapture:
    """Open a capture; the caller checks `isOpened()` and releases it."""
    quiet_native_logs()
    timeouts = timeouts or CaptureTimeouts()
    if spec.kind == "usb":
        return cv2.VideoCapture(int(spec.target))
    if spec.kind == "file":
        return cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(timeouts.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(timeouts.read_timeout_s * 1000),
    ]
    with _ENV_LOCK:
        previous = os.environ.get(_FFMPEG_ENV)
        os.environ[_FFMPEG_ENV] = _ffmpeg_options(spec, timeouts)
        try:
            return cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG, params)
        finally:
            if previous is None:
                del os.environ[_FFMPEG_ENV]
            else:
                os.environ[_FFMPEG_ENV] = previous
