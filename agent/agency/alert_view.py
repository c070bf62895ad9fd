"""The v2 alert schema as the receiving side validates it: one recipient's view of a `PublishedAlert`.

A site sends each recipient only the fields its sharing policy allows, so a
view may lack `info` or most of `detection`; what it does hold must have the
types and bounds of `agent.alerts.schema.PublishedAlert`. The model used here
is derived from that one at import: the same fields, nested models and
constraints, unknown keys refused, strict types (a number is never taken for
a string or the other way round), and every field optional except the ones a
receiver cannot do without: `schema_version` (2), `identifier`, `sent`, and
the v2 top-level `site_id`, `expires`, `recipient` and `agreement`.

`parse_alert_view` runs after the signature has verified and before anything
reads a field: a payload that does not validate is `Rejected` (`schema_v1`
for an older version, else `bad_schema`).
"""

from __future__ import annotations

__all__ = ["REQUIRED_FIELDS", "SCHEMA_VERSION_ACCEPTED", "AlertView", "parse_alert_view"]

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from agent.agency.rejections import Rejected
from agent.alerts.schema import PublishedAlert

SCHEMA_VERSION_ACCEPTED = 2
_ID = Annotated[str, Field(min_length=1, max_length=200)]
# Required in every view, and typed by `AlertView` itself.
REQUIRED_FIELDS = ("schema_version", "identifier", "sent", "site_id", "expires", "recipient", "agreement")
_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
_views: dict[type[BaseModel], type[BaseModel]] = {}


def _view_of(model: type[BaseModel]) -> type[BaseModel]:
    """`model` with every field optional (its type, bounds and nested models kept)."""
    if model not in _views:
        fields: dict[str, Any] = {name: _optional(info) for name, info in model.model_fields.items()}
        _views[model] = create_model(f"{model.__name__}View", __config__=_CONFIG, **fields)
    return _views[model]


def _optional(info: FieldInfo) -> tuple[Any, Any]:
    """The field's type made optional, its bounds kept, nested models made views."""
    annotation = _annotation(info.annotation)
    if info.metadata:
        annotation = Annotated[annotation, *info.metadata]
    return annotation | None, Field(default=None)


def _annotation(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _view_of(annotation)
    origin = get_origin(annotation)
    if origin is list:
        (item,) = get_args(annotation)
        return list[_annotation(item)]  # type: ignore[misc]  # built at run time from the model
    if origin in (Union, types.UnionType):
        return Union[tuple(_annotation(a) for a in get_args(annotation))]  # noqa: UP007  # a runtime tuple
    return annotation


class AlertView(BaseModel):
    """A verified recipient view of a v2 alert: the fields every view holds, typed.

    `parse_alert_view` returns an instance of a subclass derived from the
    `PublishedAlert` model, which adds the optional rest (`info`, `detection`, ...)
    with their own types; the accessors below read them when present.
    """

    model_config = _CONFIG

    schema_version: Literal[2]
    identifier: _ID
    sent: AwareDatetime
    site_id: _ID
    expires: AwareDatetime
    recipient: _ID
    agreement: _ID
    incidents: str | None = None
    info: Any = None
    detection: Any = None

    @property
    def incident_id(self) -> str | None:
        """The incident the alert belongs to (CAP `incidents`, else `detection.incident_id`)."""
        return self.incidents or _text(getattr(self.detection, "incident_id", None))

    @property
    def severity(self) -> str | None:
        return _text(getattr(self.info, "severity", None))

    @property
    def event(self) -> str | None:
        return _text(getattr(self.info, "event", None))

    @property
    def detection_site_id(self) -> str | None:
        return _text(getattr(self.detection, "site_id", None))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _alert_view_model() -> type[AlertView]:
    fields: dict[str, Any] = {
        name: _optional(info) for name, info in PublishedAlert.model_fields.items() if name not in REQUIRED_FIELDS
    }
    return create_model("AlertV2View", __base__=AlertView, **fields)


_ALERT_VIEW = _alert_view_model()


def parse_alert_view(payload: bytes, data: Any) -> AlertView:
    """Validate a verified payload (`data`: its bounded `json.loads`, `payload`: the bytes).

    Raises:
        Rejected: `schema_v1` for a version other than 2, `bad_schema` for anything the schema refuses.
    """
    if not isinstance(data, dict):
        raise Rejected("bad_schema", "the payload is not a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION_ACCEPTED or isinstance(version, bool):
        raise Rejected("schema_v1", f"schema v1 is no longer accepted (schema_version {version!r}; 2 is)")
    try:
        view = _ALERT_VIEW.model_validate_json(payload)
    except ValidationError as err:
        raise Rejected("bad_schema", _first_errors(err)) from None
    return view


def _first_errors(err: ValidationError, limit: int = 3) -> str:
    items = err.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in items[:limit]]
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(parts) + more
