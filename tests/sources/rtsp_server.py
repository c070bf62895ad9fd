"""A real RTSP camera on loopback for source tests: gst-rtsp-server serving a clip's frames.

`RtspServer` writes the clip's first frames as JPEG files, runs
`gst_rtsp_serve.py` with the system Python (PyGObject is not in the venv)
and waits for it to listen. `kill()` ends it with SIGKILL, as a camera that
loses power; `start()` again serves the same frames on the same port.
"""

from __future__ import annotations

__all__ = ["RtspServer", "write_frames"]

import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType

import cv2
import pytest

from tests.sources.mjpeg_server import free_port

SYSTEM_PYTHON = "/usr/bin/python3"
SERVE_SCRIPT = Path(__file__).with_name("gst_rtsp_serve.py")
SYSTEM_DEPS_HINT = (
    "the RTSP tests need gst-rtsp-server for the system Python: run `make system-deps` (apt-get install "
    "gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-ugly python3-gi)"
)


def write_frames(video: Path, folder: Path, count: int, size_wh: tuple[int, int] = (384, 288)) -> Path:
    """The first `count` frames of `video`, resized, as folder/frame0000.jpg ..."""
    folder.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    written = 0
    while written < count:
        ok, image = cap.read()
        if not ok:
            break
        cv2.imwrite(str(folder / f"frame{written:04d}.jpg"), cv2.resize(image, size_wh))
        written += 1
    cap.release()
    if written == 0:
        raise RuntimeError(f"no frames decoded from {video}")
    return folder


class RtspServer:
    """gst-rtsp-server on 127.0.0.1:port serving `frames` at `fps` under `mount`."""

    def __init__(self, frames: Path, *, port: int | None = None, fps: int = 10, mount: str = "/stream") -> None:
        self.frames, self.fps, self.mount = frames, fps, mount
        self.port = port or free_port()
        self.setups: list[str] = []
        self.output: deque[str] = deque(maxlen=200)
        self._lines_lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self, timeout_s: float = 20.0) -> RtspServer:
        """Start serving; fails the test with the install hint when GStreamer is missing."""
        if not Path(SYSTEM_PYTHON).exists():
            pytest.fail(f"{SYSTEM_PYTHON} not found: {SYSTEM_DEPS_HINT}")
        args = [SYSTEM_PYTHON, str(SERVE_SCRIPT), "--port", str(self.port), "--mount", self.mount]
        args += ["--frames", str(self.frames), "--fps", str(self.fps)]
        self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()
        threading.Thread(target=self._follow, args=(self._proc, ready), name="test-rtsp.stdout", daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not ready.wait(0.1):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                output = "".join(list(self.output)[-20:]).strip()
                pytest.fail(f"RTSP server did not start: {output}\n{SYSTEM_DEPS_HINT}")
        return self

    def _follow(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._lines_lock:
                self.output.append(line)
            if line.strip() == "ready":
                ready.set()
            elif line.startswith("setup transport="):
                with self._lines_lock:
                    self.setups.append(line.split("=", 1)[1].strip())

    def transports(self) -> list[str]:
        """The Transport header of every SETUP clients sent so far."""
        with self._lines_lock:
            return list(self.setups)

    def kill(self) -> None:
        """SIGKILL: the connection drops the way it does when a camera loses power."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()
