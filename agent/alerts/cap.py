"""CAP 1.2 XML for alerts, and reading alerts back from JSON Lines.

`alert_to_cap_xml` renders an `Alert` as an OASIS CAP 1.2 document in the
urn:oasis:names:tc:emergency:cap:1.2 namespace, elements in the order the
CAP 1.2 schema fixes; a recipient's copy carries its `expires` as
`info/expires`. What CAP has no element for (site, recipient, agreement,
camera, rule, zone or line, class, count, dwell, confidence, first and last
seen, sequence number) goes into `info/parameter` name/value pairs. CAP
times carry whole seconds and a numeric offset (`2026-03-01T23:00:00+00:00`),
never `Z` or fractions (`agent.alerts.times.cap_time`, re-exported here).

`alerts_from_jsonl` reads a file of alerts, one JSON object a line, either the
alert itself or an envelope holding it under some key (as a JSON object, a
JSON string, or base64 or base64url of the JSON bytes: the `payload` of a JWS,
as `edge-agent replay` writes them). Reading is not verifying: no signature
is checked here (`edge-agent subscribe` does that).
"""

from __future__ import annotations

__all__ = ["CAP_NAMESPACE", "alert_from_json_line", "alert_to_cap_xml", "alerts_from_jsonl", "cap_time"]

import base64
import binascii
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.alerts.schema import Alert
from agent.alerts.times import cap_time
from agent.errors import AgentError

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"


def _sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{CAP_NAMESPACE}}}{tag}")
    element.text = text
    return element


def _parameters(alert: Alert) -> list[tuple[str, str]]:
    d = alert.detection
    pairs = [
        ("schemaVersion", str(alert.schema_version)),
        ("siteId", alert.site_id),
        ("recipient", alert.recipient),
        ("agreement", alert.agreement),
        ("phase", d.phase),
        ("incidentId", d.incident_id),
        ("sequence", str(d.sequence)),
        ("cameraId", d.camera_id),
        ("rule", d.rule),
        ("ruleKind", d.rule_kind),
        ("zone", d.zone),
        ("line", d.line),
        ("direction", d.direction),
        ("className", d.class_name),
        ("count", str(d.count)),
        ("dwellSeconds", f"{d.dwell_s:.3f}"),
        ("confidence", f"{d.confidence:.4f}"),
        ("firstSeen", cap_time(d.first_seen)),
        ("lastSeen", cap_time(d.last_seen)),
    ]
    return [(name, value) for name, value in pairs if value is not None]


def _description(alert: Alert) -> str:
    d = alert.detection
    where = f"zone {d.zone}" if d.zone else f"line {d.line}"
    text = (
        f"Camera {d.camera_id}, rule {d.rule} ({d.rule_kind}), {where}: {d.count} {d.class_name}; "
        f"first seen {cap_time(d.first_seen)}, last seen {cap_time(d.last_seen)}, "
        f"confidence {d.confidence:.2f}"
    )
    if d.dwell_s > 0:
        text += f", longest dwell {d.dwell_s:.1f} s"
    return text + f". Incident phase: {d.phase}."


def _info(root: ET.Element, alert: Alert) -> None:
    i = alert.info
    info = ET.SubElement(root, f"{{{CAP_NAMESPACE}}}info")
    for tag, text in (
        ("language", i.language),
        ("category", i.category),
        ("event", i.event),
        ("responseType", i.responseType),
        ("urgency", i.urgency),
        ("severity", i.severity),
        ("certainty", i.certainty),
        ("expires", cap_time(alert.expires) if alert.expires is not None else None),
        ("senderName", i.senderName),
        ("headline", i.headline),
        ("description", _description(alert)),
    ):
        if text is not None:
            _sub(info, tag, text)
    for name, value in _parameters(alert):
        parameter = ET.SubElement(info, f"{{{CAP_NAMESPACE}}}parameter")
        _sub(parameter, "valueName", name)
        _sub(parameter, "value", value)
    for a in i.area:
        area = ET.SubElement(info, f"{{{CAP_NAMESPACE}}}area")
        _sub(area, "areaDesc", a.areaDesc)
        if a.circle:
            _sub(area, "circle", a.circle)


def alert_to_cap_xml(alert: Alert) -> bytes:
    """The alert as a CAP 1.2 XML document (UTF-8, with XML declaration)."""
    ET.register_namespace("", CAP_NAMESPACE)
    root = ET.Element(f"{{{CAP_NAMESPACE}}}alert")
    for tag, text in (
        ("identifier", alert.identifier),
        ("sender", alert.sender),
        ("sent", cap_time(alert.sent)),
        ("status", alert.status),
        ("msgType", alert.msgType),
        ("scope", alert.scope),
        ("restriction", alert.restriction),
    ):
        _sub(root, tag, text)
    if alert.references:
        # CAP references: space-separated "sender,identifier,sent" triples.
        _sub(root, "references", " ".join(alert.references))
    _sub(root, "incidents", alert.incidents)
    _info(root, alert)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)  # typeshed: Any for a named encoding
    return document


def _from_base64(text: str) -> str:
    """The UTF-8 text of base64 or base64url (padded or not), e.g. a JWS payload."""
    standard = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True).decode("utf-8")


def _decode_nested(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return None
    for decode in (lambda s: s, _from_base64):
        try:
            found = json.loads(decode(value))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        if isinstance(found, dict):
            return found
    return None


def alert_from_json_line(line: str) -> Alert:
    """Parse one JSON line holding an alert, or an envelope with the alert under a key.

    Raises:
        ValueError: when the line holds no alert.
    """
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("line is not a JSON object")
    candidates = [data] + [d for d in (_decode_nested(v) for v in data.values()) if d is not None]
    for candidate in candidates:
        if "identifier" in candidate and "info" in candidate:
            return Alert.model_validate(candidate)
    raise ValueError("no alert in this line (no object with identifier and info)")


def alerts_from_jsonl(path: Path) -> Iterator[Alert]:
    """Yield the alerts of a JSON Lines file; blank lines are skipped.

    Raises:
        AgentError: naming the file and line of the first line that holds no valid alert.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise AgentError(f"{path}: cannot read: {err}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield alert_from_json_line(line)
        except ValidationError as err:
            # The first problem with its field, e.g. "schema_version: ... schema v1 is no longer accepted".
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "<root>"
            raise AgentError(f"{path}:{number}: not an alert: {where}: {first['msg']}") from None
        except ValueError as err:
            raise AgentError(f"{path}:{number}: not an alert: {str(err).splitlines()[0]}") from None
