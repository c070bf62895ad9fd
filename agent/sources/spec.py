"""Parsing a camera's source string into a typed source spec."""

from __future__ import annotations

__all__ = ["SourceKind", "SourceSpec", "parse_source"]

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SourceKind = Literal["file", "rtsp", "http", "usb"]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where a camera's frames come from.

    Attributes:
        kind: `file`, `rtsp`, `http` (MJPEG or any HTTP stream FFmpeg reads) or `usb`.
        target: a path or URL (str), or a device index (int) for `usb`.
    """

    kind: SourceKind
    target: str | int

    @property
    def is_file(self) -> bool:
        return self.kind == "file"

    def describe(self) -> str:
        """The target for logs and errors, without credentials in URLs."""
        if isinstance(self.target, int):
            return f"usb:{self.target}"
        if self.kind in ("rtsp", "http") and "@" in self.target:
            scheme, rest = self.target.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return self.target


def parse_source(source: str | int | Path) -> SourceSpec:
    """Classify a source string: an int (or digits) is a USB device index,
    `rtsp://` and `http(s)://` are network streams, anything else a file path."""
    if isinstance(source, int):
        return SourceSpec("usb", source)
    text = str(source).strip()
    if text.isdigit():
        return SourceSpec("usb", int(text))
    lower = text.lower()
    if lower.startswith(("rtsp://", "rtsps://")):
        return SourceSpec("rtsp", text)
    if lower.startswith(("http://", "https://")):
        return SourceSpec("http", text)
    return SourceSpec("file", text)
