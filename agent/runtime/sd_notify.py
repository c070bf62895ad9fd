"""systemd's notify protocol over a plain datagram socket (no extra dependency).

Under `Type=notify` systemd passes `$NOTIFY_SOCKET`; the agent sends
`READY=1` once its cameras run, `WATCHDOG=1` while it is healthy (the
interval comes from `$WATCHDOG_USEC`), `RELOADING=1` around a SIGHUP reload
and `STOPPING=1` on shutdown. Outside systemd every call is a no-op.
"""

from __future__ import annotations

__all__ = ["SystemdNotifier"]

import os
import socket
import time
from collections.abc import Mapping


class SystemdNotifier:
    """Sends state lines to systemd when `$NOTIFY_SOCKET` is set."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with a leading '@'.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        for_us = not pid or pid == str(os.getpid())
        self.watchdog_interval_s: float | None = (
            int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and for_us else None
        )

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *lines: str) -> bool:
        """Send `KEY=VALUE` lines in one datagram; False when not under systemd or on error."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(lines).encode("utf-8"), self._address)
        except OSError:
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")
