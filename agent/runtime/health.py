"""Agent health and the state file `edge-agent status` reads.

`assess_health` turns a stats snapshot into a verdict: *problems* make the
agent unhealthy (a camera loop that stopped making progress, publisher
threads that died) and withhold the systemd watchdog ping, so systemd
restarts a hung agent; *warnings* (a camera reconnecting or restarting, the
broker unreachable or refusing, the MQTT session taken over by another agent
with the same client id, the outbox's disk full, the broker refusing the
subscription to the recipients' statuses) are reported but a restart
would not fix them, so they do not.

The running agent rewrites `<runtime.state_dir>/agent-state.json` every
`runtime.state_interval_s` (write to a temporary file, fsync, rename, so a
reader never sees half a file). `read_state` and `judge_state` are the
reader's side.
"""

from __future__ import annotations

__all__ = [
    "STATE_FILE_NAME",
    "AgentState",
    "HealthReport",
    "StateVerdict",
    "assess_health",
    "judge_state",
    "read_state",
    "write_state",
]

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from agent.errors import AgentError
from agent.runtime.stats import SiteStats

STATE_FILE_NAME = "agent-state.json"


@dataclass(frozen=True, slots=True)
class HealthReport:
    healthy: bool
    problems: tuple[str, ...]
    warnings: tuple[str, ...]


def assess_health(stats: SiteStats, *, publisher_alive: bool, stall_timeout_s: float) -> HealthReport:
    problems: list[str] = []
    warnings: list[str] = []
    for cam in stats.cameras:
        if cam.state in ("running", "unavailable", "starting") and cam.heartbeat_age_s > stall_timeout_s:
            problems.append(f"camera {cam.camera_id} stalled for {cam.heartbeat_age_s:.0f} s")
        elif cam.state == "failed":
            warnings.append(f"camera {cam.camera_id} failed ({cam.last_error}); restarting")
        elif cam.state == "unavailable":
            warnings.append(f"camera {cam.camera_id} unavailable; reconnecting")
    if not publisher_alive:
        problems.append("publisher threads are not running")
    if stats.broker_state != "connected":
        warnings.append(f"broker {stats.broker_state}; alerts wait in the outbox")
    if stats.broker_warning:
        warnings.append(stats.broker_warning)
    if stats.outbox_storage_problem:
        unstored = stats.outbox_unstored
        warnings.append(f"{stats.outbox_storage_problem}; {unstored} alert messages could not be stored since start")
    if stats.feedback.subscription_problem:
        warnings.append(f"{stats.feedback.subscription_problem}; statuses from recipients do not arrive")
    if stats.rate_scale < 1.0:
        warnings.append(f"cameras run at {stats.rate_scale:.0%} of their detect rate (box overloaded)")
    return HealthReport(not problems, tuple(problems), tuple(warnings))


@dataclass(frozen=True, slots=True)
class AgentState:
    """What the state file holds."""

    pid: int
    status: str  # "starting" | "running" | "stopping" | "stopped"
    updated_unix_s: float
    interval_s: float
    health: HealthReport
    stats: dict[str, Any] | None

    def to_json(self) -> str:
        doc = {
            "pid": self.pid,
            "status": self.status,
            "updated_unix_s": self.updated_unix_s,
            "interval_s": self.interval_s,
            "healthy": self.health.healthy,
            "problems": list(self.health.problems),
            "warnings": list(self.health.warnings),
            "stats": self.stats,
        }
        return json.dumps(doc, indent=1, sort_keys=True)


def write_state(state_dir: Path, state: AgentState) -> Path:
    """Atomically replace the state file; return its path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / STATE_FILE_NAME
    fd, tmp = tempfile.mkstemp(prefix=".agent-state.", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(state.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_state(state_dir: Path) -> AgentState | None:
    """The last state written, or None when there is no state file.

    Raises:
        AgentError: the file exists but cannot be read or parsed.
    """
    path = state_dir / STATE_FILE_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise AgentError(f"cannot read state file {path}: {err}") from err
    try:
        health = HealthReport(bool(doc["healthy"]), tuple(doc["problems"]), tuple(doc["warnings"]))
        return AgentState(
            int(doc["pid"]),
            str(doc["status"]),
            float(doc["updated_unix_s"]),
            float(doc["interval_s"]),
            health,
            doc.get("stats"),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise AgentError(f"state file {path} is malformed: {err}") from err


@dataclass(frozen=True, slots=True)
class StateVerdict:
    """The reader's conclusion: `running` and `healthy`, and why not.

    `degraded` is healthy as far as a restart goes (the watchdog is pinged) while part
    of the site is not working: a camera unreachable or restarting, the broker down.
    """

    running: bool
    healthy: bool
    reason: str
    degraded: bool = False


def judge_state(state: AgentState | None, now_unix_s: float | None = None) -> StateVerdict:
    if state is None:
        return StateVerdict(False, False, "no state file: the agent has not run here")
    if state.status == "stopped":
        return StateVerdict(False, False, "the agent stopped")
    if not _pid_alive(state.pid):
        return StateVerdict(False, False, f"process {state.pid} is not running (the agent died)")
    age_s = (now_unix_s or time.time()) - state.updated_unix_s
    if age_s > max(10.0, 3 * state.interval_s):
        return StateVerdict(True, False, f"state not updated for {age_s:.0f} s (agent hung?)")
    if not state.health.healthy:
        return StateVerdict(True, False, "; ".join(state.health.problems))
    if state.health.warnings:
        return StateVerdict(True, True, "; ".join(state.health.warnings), degraded=True)
    return StateVerdict(True, True, "ok")


def _pid_alive(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
