"""The alert schema's fields as dotted paths, and which ones a recipient gets by default.

A recipient's allow-list names dotted paths over the alert's JSON form
(`info.headline`, `detection.count`, `info.area.circle`: list items take no
index). Naming an object (`detection`) allows its whole subtree. The paths
are read from the pydantic model, so a field added to the schema later is
known here at once and reaches nobody until a policy names it.
"""

from __future__ import annotations

__all__ = [
    "ALWAYS_KEPT",
    "DEFAULT_FIELDS",
    "POLICY_ADDED",
    "alert_field_paths",
    "alert_leaf_paths",
    "check_field_paths",
]

import types
import typing
from functools import cache

from pydantic import BaseModel

from agent.alerts.schema import Alert

# The envelope every recipient gets whatever its allow-list says: without them a
# message cannot be identified, de-duplicated, ordered, linked to its incident
# or checked against the key registered to its site (`site_id`). None of them
# describes a person: ids are random UUIDv7s and `references` only repeats
# sender, identifier and sent of an earlier message. `validation_level` says
# how far the alarm was verified, which a recipient needs to rank it.
ALWAYS_KEPT: tuple[str, ...] = (
    "schema_version",
    "identifier",
    "sender",
    "sent",
    "site_id",
    "status",
    "msgType",
    "scope",
    "restriction",
    "references",
    "incidents",
    "validation_level",
)

# Set by the sharing policy itself, per recipient, never copied from the alert:
# not field paths an allow-list can name. Every view has the first three (a
# receiver checks them: is it for me, under which agreement, still valid);
# `snapshot` only where the recipient's policy allows pictures.
POLICY_ADDED: tuple[str, ...] = ("recipient", "agreement", "agreement_digest", "expires", "privacy", "snapshot")

# Metadata only: what happened, where (site and zone) and when, how many and
# how sure. Named leaf by leaf on purpose: a field added to the schema later
# (an appearance attribute, a track id) is not in this list, so the default
# recipient never gets it.
DEFAULT_FIELDS: tuple[str, ...] = (
    "info.language",
    "info.category",
    "info.event",
    "info.responseType",
    "info.urgency",
    "info.severity",
    "info.certainty",
    "info.senderName",
    "info.headline",
    "info.area.areaDesc",
    "info.area.circle",
    "detection.phase",
    "detection.incident_id",
    "detection.sequence",
    "detection.site_id",
    "detection.camera_id",
    "detection.rule",
    "detection.rule_kind",
    "detection.zone",
    "detection.line",
    "detection.direction",
    "detection.class_name",
    "detection.count",
    "detection.dwell_s",
    "detection.confidence",
    "detection.first_seen",
    "detection.last_seen",
)


def _nested_model(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside `X`, `X | None` or `list[X]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _nested_model(arg)
            if found is not None:
                return found
    return None


def _walk(model: type[BaseModel], prefix: str) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for name, info in model.model_fields.items():
        if not prefix and name in POLICY_ADDED:
            continue
        path = f"{prefix}{name}"
        nested = _nested_model(info.annotation)
        out.append((path, nested is None))
        if nested is not None:
            out.extend(_walk(nested, f"{path}."))
    return out


@cache
def alert_field_paths() -> frozenset[str]:
    """Every dotted path of the alert schema, objects and leaves."""
    return frozenset(path for path, _ in _walk(Alert, ""))


@cache
def alert_leaf_paths() -> tuple[str, ...]:
    """Every leaf (non-object) dotted path of the alert schema, in schema order."""
    return tuple(path for path, leaf in _walk(Alert, "") if leaf)


def check_field_paths(paths: typing.Iterable[str]) -> None:
    """Raise ValueError naming the first path that the alert schema does not have.

    `*` (everything, including fields added later) is accepted.
    """
    known = alert_field_paths()
    for path in paths:
        if path != "*" and path not in known:
            raise ValueError(
                f"{path!r} is not a field of the alert schema "
                "(use dotted paths such as info.headline or detection.count)"
            )
