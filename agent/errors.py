"""The agent's exception types.

Each carries the data a caller needs to report the problem in one line;
`str(err)` is that line. The CLI prints it and exits non-zero without a
traceback, because these are the user's mistakes or the world's, not bugs.
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "ConfigError",
    "ConfigIssue",
    "ModelError",
    "PublishRejected",
    "SourceError",
]

from dataclasses import dataclass


class AgentError(Exception):
    """Base of every error the agent reports to a user without a traceback."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem found in a config file.

    Attributes:
        file: path of the config file as given by the user.
        line: 1-based line of the offending value, or None when the key is missing.
        field: dotted path of the field (`cameras.0.zones.1.points`).
        reason: what is wrong, in words.
    """

    file: str
    line: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field or '<root>'}: {self.reason}"


class ConfigError(AgentError):
    """A config file could not be read or did not validate.

    Attributes:
        issues: every problem found, in file order.
    """

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("; ".join(str(i) for i in self.issues))

    @property
    def path(self) -> str:
        return self.issues[0].file if self.issues else ""

    @property
    def line(self) -> int | None:
        return self.issues[0].line if self.issues else None


class ModelError(AgentError):
    """A model is unknown, missing, damaged, or does not match its manifest entry."""


class SourceError(AgentError):
    """A camera or video source cannot be opened or read."""


class PublishRejected(AgentError):
    """The broker refused a connection or a publish.

    Attributes:
        reason_code: the MQTT reason code (or CONNACK return code) the broker sent.
    """

    def __init__(self, message: str, *, reason_code: int) -> None:
        self.reason_code = reason_code
        super().__init__(f"{message} (reason code {reason_code})")
