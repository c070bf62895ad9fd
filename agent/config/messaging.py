"""The `mqtt`, `outbox` and `signing` sections: how alerts leave the box.

The broker is `host` and `port`, or, for brokers to fail over between (the
nodes of one cluster, or a pair of brokers the receiving side listens on
both of), a list of them::

    mqtt:
      brokers:
        - {host: broker-a.example.net, port: 8883}
        - {host: broker-b.example.net, port: 8883}

The agent is connected to one of them at a time, in the list's order: when
the connection ends it tries the next one (`agent.delivery.reconnect`), and
whatever the outbox holds without a PUBACK goes out again there. Every broker
in the list shares the rest of the section (TLS, credentials, client id).
"""

from __future__ import annotations

__all__ = ["MAX_BROKERS", "BrokerAddress", "MqttConfig", "MqttTlsConfig", "OutboxConfig", "SigningConfig"]

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from agent.config.limits import MQTT_CONNECT_TIMEOUT_S
from agent.config.model import ConfigModel

MAX_BROKERS = 16  # a failover list, not a fleet: a longer one only delays noticing that all are down


class MqttTlsConfig(ConfigModel):
    enabled: bool = Field(default=False, description="connect with TLS")
    ca_file: Path | None = Field(default=None, description="CA bundle that signed the broker certificate")
    cert_file: Path | None = Field(default=None, description="client certificate (PEM) for mutual TLS")
    key_file: Path | None = Field(default=None, description="client private key (PEM)")
    verify_hostname: bool = Field(default=True, description="check the broker's name against its certificate")

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class BrokerAddress(ConfigModel):
    """One broker of `mqtt.brokers`."""

    host: str = Field(min_length=1, max_length=253, description="broker host name or address")
    port: int = Field(default=1883, ge=1, le=65535, description="broker TCP port")

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class MqttConfig(ConfigModel):
    host: str = Field(
        default="127.0.0.1", min_length=1, description="broker host name or address (one broker; else `brokers`)"
    )
    port: int = Field(default=1883, ge=1, le=65535, description="broker TCP port (one broker; else `brokers`)")
    brokers: list[BrokerAddress] = Field(
        default_factory=list,
        max_length=MAX_BROKERS,
        description="brokers to fail over between, tried in this order; instead of host and port",
    )
    protocol: Literal["5", "3.1.1"] = Field(default="5", description="MQTT protocol version")
    client_id: str | None = Field(default=None, description="MQTT client id; default: edge-agent-<site id>")
    topic_prefix: str = Field(
        default="edge",
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="first topic levels; topics are <prefix>/<site>/...",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive interval")
    connect_timeout_s: Annotated[float, MQTT_CONNECT_TIMEOUT_S.interval()] = Field(
        default=10.0, description="time allowed for CONNACK; at least 0.5 s"
    )
    username: str | None = Field(default=None, description="user name; ${ENV} placeholders allowed")
    password: SecretStr | None = Field(default=None, description="password; use ${ENV}, never plain text")
    password_file: Path | None = Field(default=None, description="file whose first line is the password")
    tls: MqttTlsConfig = Field(default_factory=MqttTlsConfig, description="TLS settings")
    message_expiry_s: int = Field(
        default=3600,
        ge=1,
        le=31_536_000,
        description="MQTT 5 message expiry of alerts: how long the broker may hold one for a subscriber",
    )

    @field_validator("brokers")
    @classmethod
    def _distinct_brokers(cls, brokers: list[BrokerAddress]) -> list[BrokerAddress]:
        seen: set[tuple[str, int]] = set()
        for broker in brokers:
            if (broker.host.lower(), broker.port) in seen:
                raise ValueError(f"broker {broker} is listed twice")
            seen.add((broker.host.lower(), broker.port))
        return brokers

    @model_validator(mode="after")
    def _one_source_each(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.brokers and {"host", "port"} & self.model_fields_set:
            raise ValueError("give host and port (one broker) or brokers (a list), not both")
        return self

    @property
    def broker_addresses(self) -> tuple[BrokerAddress, ...]:
        """The brokers to connect to, in the order tried: `brokers`, else the one of `host` and `port`."""
        return tuple(self.brokers) or (BrokerAddress(host=self.host, port=self.port),)


class OutboxConfig(ConfigModel):
    path: Path = Field(default=Path("var/outbox.sqlite"), description="SQLite file of alerts not yet acknowledged")
    max_messages: int = Field(default=10000, ge=1, le=10_000_000, description="most alerts kept")
    max_bytes: int = Field(default=50_000_000, ge=10_000, description="most payload bytes kept")


class SigningConfig(ConfigModel):
    key_file: Path = Field(
        default=Path("var/keys/site-signing.pem"),
        description="Ed25519 private key (PEM) that signs every alert; created on first start if missing",
    )
    key_id: str | None = Field(
        default=None, description="key id put in each envelope; default: derived from the public key"
    )
