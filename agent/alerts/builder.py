"""Turns rule events into alerts: ids, CAP fields, per-camera sequence numbers.

One `AlertBuilder` per camera pipeline. It gives each incident one UUIDv7 for
its whole life, each message its own UUIDv7, numbers the camera's messages
with the camera's `MessageSequence`, and links updates and ends to the
incident's first message through CAP `references`. A pipeline is rebuilt on
every reload and camera restart; the sequence is not: whoever runs the
camera keeps one for the agent's whole run and hands it to each new builder,
so `detection.sequence` never goes back.
"""

from __future__ import annotations

__all__ = ["AlertBuilder", "MessageSequence"]

from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert, AlertArea, AlertInfo, DetectionDetails
from agent.alerts.times import cap_time
from agent.config import SiteInfo
from agent.values.rule_events import RuleEvent

_EVENT_NAMES = {
    "intrusion": "Intrusion",
    "loitering": "Loitering",
    "line_crossing": "Line crossing",
    "wrong_way": "Wrong-way crossing",
    "crowding": "Crowding",
}


class MessageSequence:
    """One camera's message numbers, 1, 2, 3, ... for as long as the object lives (the agent's run).

    Used from the camera's own thread only, like the pipeline it is handed to.
    """

    def __init__(self) -> None:
        self._last = 0

    @property
    def last(self) -> int:
        """The number given most recently (0 before the first)."""
        return self._last

    def next(self) -> int:
        self._last += 1
        return self._last


class AlertBuilder:
    """Builds the alerts of one camera.

    Args:
        site: the site's identity and location.
        camera_id: the camera the events come from.
        status: CAP status: "Actual" for live cameras, "Test" for replays.
        ids: source of UUIDv7s (seeded for replays so they repeat).
        sequence: the camera's message numbers; a new one (from 1) when not given.
    """

    def __init__(
        self,
        site: SiteInfo,
        camera_id: str,
        *,
        status: str,
        ids: Uuid7Factory,
        sequence: MessageSequence | None = None,
    ) -> None:
        self._site = site
        self._camera_id = camera_id
        self._status = status
        self._ids = ids
        self._sequence = sequence if sequence is not None else MessageSequence()
        self._incident_ids: dict[tuple[str, int], str] = {}
        self._first_refs: dict[tuple[str, int], str] = {}
        self._sender = f"edge-agent@{site.id}"

    def reset(self) -> None:
        self._incident_ids.clear()
        self._first_refs.clear()

    def build(self, event: RuleEvent) -> Alert:
        key = (event.rule, event.incident_key)
        if event.phase == "start" or key not in self._incident_ids:
            self._incident_ids[key] = self._ids.new(event.first_seen_utc)
        incident_id = self._incident_ids[key]
        number = self._sequence.next()
        identifier = self._ids.new(event.ts_utc)
        references = [self._first_refs[key]] if key in self._first_refs else []
        alert = Alert(
            identifier=identifier,
            sender=self._sender,
            sent=event.ts_utc,
            site_id=self._site.id,
            status=self._status,  # type: ignore[arg-type]  # a str here; the model checks it against CAP's values
            msgType="Alert" if event.phase == "start" else "Update",
            references=references,
            incidents=incident_id,
            info=self._info(event),
            detection=self._details(event, incident_id, number),
        )
        if event.phase == "start":
            self._first_refs[key] = f"{self._sender},{identifier},{cap_time(event.ts_utc)}"
        elif event.phase == "end":
            self._incident_ids.pop(key, None)
            self._first_refs.pop(key, None)
        return alert

    def _info(self, event: RuleEvent) -> AlertInfo:
        name = _EVENT_NAMES.get(event.rule_kind, event.rule_kind.replace("_", " ").capitalize())
        where = event.zone or event.line or ""
        # Free text names the site and the zone or line, never the camera: the camera id
        # travels only in `detection.camera_id`, where policies can pseudonymise it.
        area = f"{self._site.name}, {where}".rstrip(", ")
        lat, lon = self._site.location.lat, self._site.location.lon
        if event.phase == "end":
            headline = f"{name} ended: {where}"
        elif event.direction is not None:
            arrow = event.direction.replace("_to_", " to ")
            headline = f"{name}: {event.count} {event.class_name} crossed {where} {arrow}"
        else:
            headline = f"{name}: {event.count} {event.class_name} in {where}"
        return AlertInfo(
            event=name,
            responseType="AllClear" if event.phase == "end" else "Monitor",
            urgency="Immediate" if event.phase != "end" else "Expected",
            severity=event.severity,  # type: ignore[arg-type]  # a str in RuleEvent; the model checks it
            senderName=self._site.name,
            headline=headline,
            area=[AlertArea(areaDesc=area, circle=f"{lat:.5f},{lon:.5f} 0.1")],
        )

    def _details(self, event: RuleEvent, incident_id: str, sequence: int) -> DetectionDetails:
        return DetectionDetails(
            phase=event.phase,
            incident_id=incident_id,
            sequence=sequence,
            site_id=self._site.id,
            camera_id=self._camera_id,
            rule=event.rule,
            rule_kind=event.rule_kind,
            zone=event.zone,
            line=event.line,
            direction=event.direction,  # type: ignore[arg-type]  # a str in RuleEvent; the model checks it
            class_name=event.class_name,
            count=event.count,
            dwell_s=event.dwell_s,
            confidence=event.confidence,
            first_seen=event.first_seen_utc,
            last_seen=event.last_seen_utc,
        )
