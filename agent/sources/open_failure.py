"""Why a camera stream did not open, in one reason an installer can act on.

OpenCV only says that a capture did not open; FFmpeg's own message (a 404,
a refused connection) goes to stderr on every retry, unstructured. So when a
network source fails to open, the reader asks the camera itself, once, with
a plain socket: a TCP connect (refused, no answer, unknown host), then for
RTSP a DESCRIBE and for HTTP a GET without credentials, whose status line
says whether the path exists or credentials are wanted. Nothing here sends
credentials or logs them; TLS sources (`rtsps`, `https`) get the connect
check only.
"""

from __future__ import annotations

__all__ = ["OpenFailure", "explain_open_failure"]

import errno
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from agent.sources.spec import SourceSpec

_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
# Status lines are short; a camera that answers with more than this before a newline is not speaking RTSP/HTTP.
_MAX_STATUS_LINE_BYTES = 1024
_STATUS_REASONS = {401: "unauthorized", 403: "forbidden", 404: "not_found"}
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN}


@dataclass(frozen=True, slots=True)
class OpenFailure:
    """Why a source did not open.

    Attributes:
        reason: a short code for the log line (`connection_refused`,
            `not_found`, `unauthorized`, `forbidden`, `refused_by_camera` (another
            error status), `no_answer`, `host_not_found`, `unreachable`,
            `file_not_found`, `open_failed` when nothing more specific is known).
        detail: the same in words, with what the camera answered.
    """

    reason: str
    detail: str


def explain_open_failure(spec: SourceSpec, timeout_s: float) -> OpenFailure:
    """Find out why `spec` did not open; at most two round trips of `timeout_s` each."""
    if spec.kind == "usb":
        return OpenFailure("open_failed", f"video device {spec.target} cannot be opened (missing or busy)")
    if spec.kind == "file":
        if not Path(str(spec.target)).is_file():
            return OpenFailure("file_not_found", "no such file")
        return OpenFailure("open_failed", "the file is not a video FFmpeg can read")
    url = urlsplit(str(spec.target))
    scheme = url.scheme.lower()
    try:
        port = url.port or _DEFAULT_PORTS.get(scheme, 554)
    except ValueError:
        return OpenFailure("open_failed", "the URL has an invalid port")
    host = url.hostname or ""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            if scheme not in ("rtsp", "http"):
                return OpenFailure("open_failed", f"{host}:{port} accepts connections but the stream did not open")
            sock.settimeout(timeout_s)
            sock.sendall(_request(scheme, url, host, port))
            status = _status_line(sock)
    except socket.gaierror:
        return OpenFailure("host_not_found", f"cannot resolve host {host!r}")
    except ConnectionRefusedError:
        return OpenFailure("connection_refused", f"nothing listens on {host}:{port} (connection refused)")
    except TimeoutError:
        return OpenFailure("no_answer", f"{host}:{port} did not answer within {timeout_s:g} s")
    except OSError as err:
        if err.errno in _UNREACHABLE:
            return OpenFailure("unreachable", f"no route to {host}:{port}")
        return OpenFailure("open_failed", f"{host}:{port}: {err.strerror or err}")
    return _from_status(scheme, status, has_credentials=url.username is not None)


def _request(scheme: str, url: SplitResult, host: str, port: int) -> bytes:
    # The request URI never carries the URL's user and password.
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if scheme == "rtsp":
        head = [f"DESCRIBE rtsp://{authority}{path} RTSP/1.0", "CSeq: 1", "Accept: application/sdp"]
    else:
        head = [f"GET {path} HTTP/1.1", f"Host: {authority}", "Connection: close"]
    return "\r\n".join([*head, "User-Agent: edge-agent", "", ""]).encode()


def _status_line(sock: socket.socket) -> str:
    data = b""
    while b"\n" not in data and len(data) < _MAX_STATUS_LINE_BYTES:
        chunk = sock.recv(_MAX_STATUS_LINE_BYTES - len(data))
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("latin-1").strip()


def _from_status(scheme: str, status: str, *, has_credentials: bool) -> OpenFailure:
    protocol = scheme.upper()
    parts = status.split(" ", 2)
    if len(parts) < 2 or not parts[0].upper().startswith(protocol) or not parts[1].isdigit():
        shown = status[:80] or "nothing"
        return OpenFailure("open_failed", f"the server does not answer as an {protocol} server (it sent {shown!r})")
    code = int(parts[1])
    answer = f"{protocol} {code} {parts[2] if len(parts) > 2 else ''}".strip()
    if 200 <= code < 300:
        return OpenFailure("open_failed", f"the camera answers ({answer}) but its stream could not be decoded")
    reason = _STATUS_REASONS.get(code, "refused_by_camera")
    if reason == "not_found":
        return OpenFailure(reason, f"no stream at this path ({answer})")
    if reason == "unauthorized":
        wanted = "check the user and password in the URL" if has_credentials else "the URL has none"
        return OpenFailure(reason, f"the camera wants credentials ({answer}); {wanted}")
    return OpenFailure(reason, f"the camera refused the stream ({answer})")
