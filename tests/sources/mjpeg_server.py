"""A real MJPEG-over-HTTP server (multipart/x-mixed-replace) for source tests.

`serve(jpegs)` swaps the frames mid-stream on open connections, which is
what a camera whose resolution is changed in its web page does to its
MJPEG stream.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

BOUNDARY = "frameboundary"


def load_jpegs(video: Path, count: int, size_wh: tuple[int, int] = (384, 288)) -> list[bytes]:
    cap = cv2.VideoCapture(str(video))
    jpegs = []
    for _ in range(count):
        ok, image = cap.read()
        if not ok:
            break
        jpegs.append(cv2.imencode(".jpg", cv2.resize(image, size_wh))[1].tobytes())
    cap.release()
    return jpegs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MjpegServer:
    """Serve JPEG frames in a loop at `fps` on 127.0.0.1:port until stopped."""

    def __init__(self, jpegs: list[bytes], port: int, fps: float = 25.0) -> None:
        self.jpegs, self.port, self.fps = jpegs, port, fps
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def serve(self, jpegs: list[bytes]) -> None:
        """Send these frames from the next one on, on every open connection too."""
        self.jpegs = jpegs

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                i = 0
                try:
                    while not server._stop.is_set():
                        jpg = server.jpegs[i % len(server.jpegs)]
                        head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpg + b"\r\n")
                        i += 1
                        server._stop.wait(1.0 / server.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                # Closing the socket abruptly is what a camera losing power looks like.
                self.close_connection = True

        return Handler

    def start(self) -> MjpegServer:
        self._stop.clear()
        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="test-mjpeg", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
