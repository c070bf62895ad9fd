"""Broker credentials: a password from the config or from a password file, never from the YAML itself.

One reader for the site's publisher (`mqtt.password_file`) and the agency's
`edge-agent subscribe --password-file`, so both read a file the same way.
"""

from __future__ import annotations

__all__ = ["mqtt_password", "read_password_file"]

from pathlib import Path

from agent.config import MqttConfig
from agent.errors import AgentError


def read_password_file(path: Path, what: str) -> str:
    """The first line of a password file (empty when the file is empty).

    Raises:
        AgentError: the file cannot be read; `what` names the setting in the message.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise AgentError(f"cannot read {what} {path}: {err}") from err
    return lines[0] if lines else ""


def mqtt_password(config: MqttConfig) -> str | None:
    """The password of the `mqtt` section (`password`, else `password_file`); None when neither is set.

    Raises:
        AgentError: the password file cannot be read.
    """
    if config.password is not None:
        return config.password.get_secret_value()
    if config.password_file is not None:
        return read_password_file(config.password_file, "mqtt.password_file")
    return None
