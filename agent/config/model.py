"""What every config section shares: the frozen, closed base model, ids, severities.

Every section forbids unknown keys (a typo is an error, not a silent default), is
frozen, so a config handed to a stage cannot change under it, and refuses NaN and
infinities in every number (`.nan` compares false with every bound, so it would
pass any range check and reach a stage).
"""

from __future__ import annotations

__all__ = ["ID_PATTERN", "SEVERITY_ORDER", "ConfigModel", "Severity", "require_unique"]

from typing import Literal

from pydantic import BaseModel, ConfigDict

# Ids end up in MQTT topics: keep them to characters that are safe there.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Severity = Literal["Minor", "Moderate", "Severe", "Extreme"]
SEVERITY_ORDER: dict[str, int] = {"Minor": 0, "Moderate": 1, "Severe": 2, "Extreme": 3}


class ConfigModel(BaseModel):
    """The base of every config section: unknown keys are errors, values are frozen and finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def require_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name!r} is defined twice")
        seen.add(name)
