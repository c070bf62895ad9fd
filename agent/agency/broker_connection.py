"""How the receiving side reaches its brokers: the URLs, TLS, credentials, protocol and session settings.

Shared by the alert receiver (`agent.agency.subscriber`) and the status
sender (`agent.agency.status_sender`), so both connect the same way. For a
receiver that must not miss alerts while it is away, give a fixed
`client_id` and `session_expiry_s > 0`: the broker then keeps the
subscription (MQTT 5 clean start off; MQTT 3.1.1 clean session off, kept
as long as the broker keeps such sessions) and queues QoS 1 messages for it.

`ConnectionOptions.urls` is `url` and then `fallback_urls`: brokers one
client may be connected to in turn (the nodes of one cluster). `connect`
tries them in order from the one it is given and says which one answered,
so a one-off client (a status sent from the console) reaches whichever
broker is up. All of them share one scheme, since the TLS settings are shared.
"""

from __future__ import annotations

__all__ = ["BrokerUrl", "ConnectionOptions", "connect", "new_client", "parse_broker_url"]

from dataclasses import dataclass, field
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

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


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
    """How to reach the broker; see `edge-agent subscribe --help` for each option.

    `fallback_urls`: further brokers of the same service, tried in turn after `url` (see the module docstring).
    `protocol`: "5" or "3.1.1" (a broker without MQTT 5, e.g. RabbitMQ 3.x).
    """

    url: BrokerUrl
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify_hostname: bool = True
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    session_expiry_s: int = 0
    fallback_urls: tuple[BrokerUrl, ...] = field(default=())
    protocol: str = "5"

    def __post_init__(self) -> None:
        if any(u.tls != self.url.tls for u in self.fallback_urls):
            raise AgentError("every broker URL must use one scheme (mqtt:// or mqtts://): they share the TLS settings")
        if self.protocol not in ("5", "3.1.1"):
            raise AgentError(f"MQTT protocol {self.protocol!r}: use 5 or 3.1.1")

    @property
    def urls(self) -> tuple[BrokerUrl, ...]:
        """Every broker, in the order tried."""
        return (self.url, *self.fallback_urls)


def new_client(options: ConnectionOptions, *, manual_ack: bool = False) -> paho.Client:
    """A paho client (MQTT 5, or 3.1.1 when asked) with TLS and credentials set, paho's own reconnect off.

    Raises:
        AgentError: a TLS file cannot be used.
    """
    v5 = options.protocol == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=options.client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        # MQTT 3.1.1 has no session expiry: a session is kept (clean session off) or not at all.
        clean_session=None if v5 else options.session_expiry_s == 0,
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


def connect(client: paho.Client, options: ConnectionOptions, keepalive_s: int = 30, *, first: int = 0) -> int:
    """Open the connection to the first broker that accepts it, trying `options.urls` in order from index
    `first` (round the list); the index of the one that did. Its CONNACK comes on the network thread; a
    session is kept when asked.

    Raises:
        AgentError: no broker can be reached (every one tried, in words).
    """
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves __init__ unannotated
    if options.session_expiry_s > 0:
        props.SessionExpiryInterval = options.session_expiry_s
    urls = options.urls
    failures = []
    for step in range(len(urls)):
        index = (first + step) % len(urls)
        url = urls[index]
        try:
            if options.protocol == "5":
                client.connect(
                    url.host, url.port, keepalive_s, clean_start=options.session_expiry_s == 0, properties=props
                )
            else:  # paho refuses MQTT 5 arguments for 3.1.1; its session is set on the client
                client.connect(url.host, url.port, keepalive_s)
        except OSError as err:
            failures.append(f"{url.host}:{url.port}: {err}")
            continue
        return index
    raise AgentError(f"cannot connect to {'; '.join(failures)}")
