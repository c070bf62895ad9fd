"""In the running agent: the drills `edge-agent drill` hands over, run one at a time on their own thread.

The agent owns the site's MQTT session and the feedback subscription, and
its feedback intake believes a status only about an alert its own audit log
recorded as sent. So a drill is not published by a second process: the
command adds a row to the `drill_requests` table of the outbox file
(`agent.drills.drill_requests`), and the `DrillDesk`'s thread, `drills`,
looks there once a `poll_s`, takes the oldest pending drill and runs it
(`agent.drills.drill_run`) into the agent's own outbox, audit log, holds and
feedback intake. Its messages leave on the agent's connection, and the
statuses recipients send about them are accepted, audited and timed like
any others, for as long as the agent runs.

The scenario is looked up in the agent's config of now (a SIGHUP reload
brings in new scenarios); one the agent does not know fails with a reason
the command prints. At start, drills a killed run left `running` are settled
as `interrupted` and get their `drill_finished` record. Closing the desk
stops a drill under way (its open incidents are ended) and joins the thread.
"""

from __future__ import annotations

__all__ = ["DrillDesk"]

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from agent.config import SiteConfig
from agent.drills.drill_requests import DrillRequest, DrillRequests
from agent.drills.drill_run import DrillDelivery, drill_recipients, run_drill
from agent.logs import log_event

_log = logging.getLogger("agent.drills")


class DrillDesk:
    """Runs handed-over drills (see the module docstring). Use as a context manager.

    Args:
        config: the config in force now (the reloader's).
        delivery: the agent's delivery path.
        outbox_path: the outbox file holding the requests table.
        stop: the agent's stop event; a drill under way stops when it is set.
        poll_s: how often the table is looked at.
    """

    def __init__(
        self,
        config: Callable[[], SiteConfig],
        delivery: DrillDelivery,
        *,
        outbox_path: Path,
        stop: threading.Event,
        poll_s: float = 1.0,
    ) -> None:
        self._config = config
        self._delivery = delivery
        self._requests = DrillRequests(outbox_path)
        self._agent_stop = stop
        self._closing = threading.Event()
        self._poll_s = poll_s
        self._thread = threading.Thread(target=self._run, name="drills", daemon=True)

    def __enter__(self) -> Self:
        self._requests.__enter__()
        for left in self._requests.left_running():
            self._interrupted(left)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        self._thread.join()
        self._requests.__exit__(None, None, None)

    def _stopping(self) -> bool:
        return self._closing.is_set() or self._agent_stop.is_set()

    def _run(self) -> None:
        while not self._closing.wait(self._poll_s):
            if self._agent_stop.is_set():
                continue  # stopping: take no new drill
            try:
                request = self._requests.take_pending()
                if request is not None:
                    self._run_one(request)
            except Exception:  # noqa: BLE001 - the desk outlives a failing table or drill
                _log.exception("event=drill_desk_failed")

    def _run_one(self, request: DrillRequest) -> None:
        config = self._config()
        scenario = config.drills.scenario(request.scenario)
        if scenario is None:
            known = ", ".join(s.name for s in config.drills.scenarios) or "none"
            detail = f"the running agent's config has no drill scenario {request.scenario!r} (it has: {known}); "
            detail += "reload it (SIGHUP) after adding one"
            self._requests.settle(request.drill_id, "failed", detail=detail)
            log_event(_log, "drill_refused", logging.WARNING, drill=request.drill_id, reason=detail)
            return
        outcome = run_drill(config, scenario, request.drill_id, self._delivery, should_stop=self._stopping)
        self._requests.settle(
            request.drill_id, outcome.state, alerts=outcome.alerts, messages=outcome.messages, detail=outcome.detail
        )

    def _interrupted(self, request: DrillRequest) -> None:
        detail = "the agent stopped during the drill"
        self._requests.settle(request.drill_id, "interrupted", detail=detail)
        config = self._config()
        scenario = config.drills.scenario(request.scenario)
        # How many alerts left before the stop is not known here; the sent-message records say.
        known: dict[str, Any] = (
            {"recipients": list(drill_recipients(config, scenario)), "camera": scenario.camera} if scenario else {}
        )
        self._delivery.audit.record_event(
            "drill_finished",
            drill_id=request.drill_id,
            scenario=request.scenario,
            **known,
            state="interrupted",
            detail=detail,
        )
        log_event(_log, "drill_interrupted", logging.WARNING, drill=request.drill_id, detail=detail)
