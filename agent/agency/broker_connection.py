"""How the receiving side reaches its broker: the URL, TLS, credentials and MQTT 5 session settings.

Shared by the alert receiver (`agent.agency.subscriber`) and the status
sender (`agent.agency.status_sender`), so both connect the same way. For a
receiver that must not miss alerts while it is away, give a fixed
`client_id` and `session_expiry_s > 0`: the broker then keeps the
subscription (MQTT 5 clean start off) and queues QoS 1 messages for it.
"""

from __future__ import annotations

__all__ = ["BrokerUrl", "ConnectionOptions", "connect", "new_client", "parse_broker_url"]

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.delivery.tls import client_tls_context, use_tls
from agent.errors import AgentError


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerUrl:
    """`mqtt://host[:1883]` or `mqtts://host[:8883]`.

    Raises:
        AgentError: another scheme, or no host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise AgentError(f"broker URL {url!r} must look like mqtt://host:port or mqtts://host:port")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise AgentError(f"broker URL {url!r} has a bad port") from None
    return BrokerUrl(parts.hostname, port, tls)


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """How to reach the broker; see `edge-agent subscribe --help` for each option."""

    url: BrokerUrl
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify_hostname: bool = True
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    session_expiry_s: int = 0


def new_client(options: ConnectionOptions, *, manual_ack: bool = False) -> paho.Client:
    """A paho MQTT 5 client with TLS and credentials set, paho's own reconnect off.

    Raises:
        AgentError: a TLS file cannot be used.
    """
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=options.client_id,
        protocol=paho.MQTTv5,
        reconnect_on_failure=False,
        manual_ack=manual_ack,
    )
    if options.username is not None:
        client.username_pw_set(options.username, options.password)
    if options.url.tls:
        context = client_tls_context(
            ca_file=options.ca_file,
            cert_file=options.cert_file,
            key_file=options.key_file,
            verify_hostname=options.verify_hostname,
        )
        use_tls(client, context)
    return client


def connect(client: paho.Client, options: ConnectionOptions, keepalive_s: int = 30) -> None:
    """Open the connection (its CONNACK comes on the network thread); a session is kept when asked.

    Raises:
        AgentError: the broker cannot be reached.
    """
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves __init__ unannotated
    if options.session_expiry_s > 0:
        props.SessionExpiryInterval = options.session_expiry_s
    try:
        client.connect(
            options.url.host,
            options.url.port,
            keepalive_s,
            clean_start=options.session_expiry_s == 0,
            properties=props,
        )
    except OSError as err:
        raise AgentError(f"cannot connect to {options.url.host}:{options.url.port}: {err}") from err
