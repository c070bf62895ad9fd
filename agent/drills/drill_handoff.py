"""The command's side of a drill run by the running agent: hand it over, wait until it is settled.

The drill is added to the outbox file's `drill_requests` table
(`agent.drills.drill_requests`); the agent's `DrillDesk` takes it within a
second or so. One not taken within `pickup_timeout_s` (an agent of a version
without drills, or one that is stuck) is withdrawn, atomically, so it never
runs later by surprise. While the drill runs, the command waits for its row
to be settled, and says so if the agent stops meanwhile.
"""

from __future__ import annotations

__all__ = ["hand_over"]

import time
from collections.abc import Callable
from pathlib import Path

from agent.config import SiteConfig
from agent.drills.drill_requests import DrillRequest, DrillRequests
from agent.drills.drill_standalone import agent_running
from agent.errors import AgentError

_POLL_S = 0.25


def hand_over(
    config: SiteConfig,
    scenario: str,
    drill_id: str,
    *,
    pickup_timeout_s: float = 15.0,
    on_taken: Callable[[DrillRequest], None] = lambda r: None,
) -> DrillRequest:
    """Have the running agent run the drill; returns its settled request.

    Raises:
        AgentError: no agent runs (use --standalone), it did not take the drill in time,
            or it stopped before settling it.
    """
    if agent_running(config) is None:
        raise AgentError(
            f"no agent of site {config.site.id} is running (state file in {config.runtime.state_dir}): "
            "start it, or run the drill with --standalone"
        )
    path = Path(config.outbox.path)
    if not path.is_file():
        raise AgentError(f"the running agent's outbox {path} does not exist")
    with DrillRequests(path) as requests:
        requests.request(drill_id, scenario)
        deadline = time.monotonic() + pickup_timeout_s
        request = requests.get(drill_id)
        while request is not None and request.state == "pending":
            if time.monotonic() > deadline and requests.withdraw(drill_id):
                raise AgentError(
                    f"the running agent did not take drill {drill_id} within {pickup_timeout_s:g} s "
                    "(a version without drills, or busy with another drill); it was withdrawn"
                )
            time.sleep(_POLL_S)
            request = requests.get(drill_id)
        if request is None:
            raise AgentError(f"drill {drill_id} vanished from the requests table")
        on_taken(request)
        while not request.settled:
            if agent_running(config) is None:
                raise AgentError(f"the agent stopped during drill {drill_id}; its next start marks it interrupted")
            time.sleep(_POLL_S)
            request = requests.get(drill_id) or request
        return request
