"""Helpers for the service tests: a site config on disk, the agent as a real process, a subscriber."""

from __future__ import annotations

__all__ = ["AgentProcess", "Subscriber", "write_site_config"]

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import paho.mqtt.client as mqtt
import yaml

REPO = Path(__file__).resolve().parents[2]

# A zone over the whole frame: people walk through vtest.avi all the time, so alerts come quickly.
WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]


def camera(
    camera_id: str, source: str, *, loop: bool = True, rule: str = "anyone", zone: str = "everywhere"
) -> dict[str, object]:
    return {
        "id": camera_id,
        "source": source,
        "loop": loop,
        "detect_fps": 5,
        "zones": [{"name": zone, "points": WHOLE_FRAME}],
        "rules": [
            {
                "kind": "intrusion",
                "name": rule,
                "zone": zone,
                "classes": ["person"],
                "min_duration_s": 0.4,
                "update_interval_s": 2,
                "end_after_s": 1,
                "cooldown_s": 1,
            }
        ],
    }


def write_site_config(
    path: Path, *, port: int, site_id: str, cameras: list[dict[str, object]], runtime: dict[str, object] | None = None
) -> Path:
    """Write a site config whose state (outbox, key, state dir) lives beside it."""
    doc = {
        "site": {"id": site_id, "name": "service test", "location": {"lat": 51.0, "lon": 0.0}},
        "cameras": cameras,
        "detector": {"model": "yolox-nano-416", "intra_op_threads": 1},
        "mqtt": {"host": "127.0.0.1", "port": port, "connect_timeout_s": 5},
        "outbox": {"path": "outbox.sqlite"},
        "signing": {"key_file": "key.pem"},
        "runtime": {"state_dir": "run", "state_interval_s": 0.5, "stats_interval_s": 1, **(runtime or {})},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def edge_agent(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


class AgentProcess:
    """`edge-agent run --config FILE` as a child process; stderr goes to a file we can search."""

    def __init__(self, config: Path, *extra: str) -> None:
        self.config = config
        self.log_file = config.parent / "agent.log"
        self._args = [sys.executable, "-m", "agent", "run", "--config", str(config), *extra]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AgentProcess:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(REPO / ".cache" / "numba"))
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(self._args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout_s: float = 30, count: int = 1) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.findall(pattern, self.log)
            if len(found) >= count:
                return found
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} (x{count}) in the agent log:\n{self.log[-3000:]}")

    def signal(self, signum: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout_s: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout_s)


class Subscriber:
    """Keeps every message of a topic filter (subscribed before the agent starts)."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(topic_filter, qos=1)
        self._client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("subscription not acknowledged")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def matching(self, pattern: str) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return [m for m in self.messages if re.search(pattern, m[0])]

    def wait_for(self, pattern: str, timeout_s: float = 30, count: int = 1) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.matching(pattern)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no message on {pattern!r} (x{count}); got {[m[0] for m in self.messages][-10:]}")

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
