"""SIGHUP: apply the config file again to a running agent, or refuse and say why.

What may change without a restart: zones, masks, motion, filters, rules and
detect rates of the existing cameras (each camera swaps its pipeline on its
own thread, ending the old rules' open incidents first) and the policies
(the delivery sink routes with the new dispatcher from the next alert on).
A file that does not validate, or that changes anything only a restart can
apply (`reload_refusal`: site, detector, tracker, broker, outbox, signing,
runtime, the audit log, the camera list or a camera's source), is refused
with a logged reason and the running config stays.
"""

from __future__ import annotations

__all__ = ["ConfigReloader", "reload_refusal"]

import logging
from collections.abc import Sequence
from pathlib import Path

from agent.config import SiteConfig, load_config
from agent.delivery.sink import DeliverySink
from agent.errors import AgentError, ConfigError
from agent.logs import log_event
from agent.runtime.assembly import dispatcher_from_config
from agent.runtime.camera_worker import CameraWorker
from agent.runtime.sd_notify import SystemdNotifier

_log = logging.getLogger("agent.runtime.reloader")
_RESTART_SECTIONS = ("site", "detector", "tracker", "mqtt", "outbox", "signing", "runtime")
# What SIGHUP may change inside a camera; anything else there needs a restart.
_CAMERA_RESTART_FIELDS = {"id", "source", "loop", "enabled"}


def reload_refusal(old: SiteConfig, new: SiteConfig) -> str | None:
    """Why `new` cannot be applied to a running agent (None when it can)."""
    for section in _RESTART_SECTIONS:
        if getattr(old, section) != getattr(new, section):
            return f"section {section!r} changed; restart the agent to apply it"
    if old.policies.audit_log != new.policies.audit_log:
        return "policies.audit_log changed; restart the agent to apply it"
    old_ids = [c.id for c in old.cameras]
    if old_ids != [c.id for c in new.cameras]:
        return f"cameras changed ({', '.join(old_ids)} -> {', '.join(c.id for c in new.cameras)}); restart to apply"
    for before, after in zip(old.cameras, new.cameras, strict=False):
        if before.model_dump(include=_CAMERA_RESTART_FIELDS) != after.model_dump(include=_CAMERA_RESTART_FIELDS):
            return f"camera {before.id!r}: source, loop or enabled changed; restart to apply"
    return None


class ConfigReloader:
    """Applies the config file to the running cameras and sink (see the module docstring).

    Args:
        config: the config running now.
        config_path: the file to read again; None refuses every reload.
        overrides: the `--set` overrides applied on every load.
        workers: the running camera workers.
        sink: the delivery sink whose dispatcher a reload replaces.
        notifier: systemd notifications (reloading, then ready).
    """

    def __init__(
        self,
        config: SiteConfig,
        *,
        config_path: str | Path | None,
        overrides: Sequence[str],
        workers: Sequence[CameraWorker],
        sink: DeliverySink,
        notifier: SystemdNotifier,
    ) -> None:
        self.config = config
        self._path = config_path
        self._overrides = list(overrides)
        self._workers = tuple(workers)
        self._sink = sink
        self._notifier = notifier

    def apply(self) -> bool:
        """Load and apply the file; keep the running config (and log why) when it cannot be applied."""
        if self._path is None:
            log_event(_log, "reload_rejected", logging.WARNING, reason="no config file to reload")
            return False
        self._notifier.reloading()
        try:
            new = load_config(self._path, self._overrides)
            refusal = reload_refusal(self.config, new)
            if refusal is not None:
                raise AgentError(refusal)
            dispatcher = dispatcher_from_config(new).with_tables(self._sink.dispatcher.tables)
        except AgentError as err:
            reason = "; ".join(str(i) for i in err.issues) if isinstance(err, ConfigError) else str(err)
            log_event(
                _log,
                "reload_rejected",
                logging.ERROR,
                file=self._path,
                reason=reason,
                action="keeping the running config",
            )
            self._notifier.ready()
            return False
        self._sink.use_dispatcher(dispatcher)
        by_id = {c.id: c for c in new.cameras}
        for worker in self._workers:
            worker.request_reload(by_id[worker.camera_id])
        self.config = new
        log_event(
            _log,
            "reload_applied",
            file=self._path,
            cameras=len(self._workers),
            recipients=len(new.policies.recipients),
        )
        self._notifier.ready()
        return True
