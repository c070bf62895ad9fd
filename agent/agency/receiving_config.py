"""The receiving side's config file: one YAML for the ingest service and the console of one recipient.

::

    recipient: police-rtcc              # this recipient's name in the sites' policies
    registry: registry.yaml             # the trust registry (sites, topics, keys)
    status_key: keys/police-rtcc-status.pem   # signs every status sent back to a site
    database: sqlite:///receiving.sqlite       # default: receiving.sqlite beside this file
    # database: postgresql+psycopg://ingest@db.example/receiving   # several replicas or machines
    broker:
      url: mqtt://127.0.0.1:1883        # mqtts:// with ca_file (and cert_file/key_file)
      # urls: [mqtts://node-1:8883, mqtts://node-2:8883]   # several brokers instead of url
      # connect_to: one                 # one: nodes of one cluster, used in turn; every: a connection to each
      # protocol: "5"                   # "3.1.1" for a broker without MQTT 5 (RabbitMQ 3.x)
      client_id: police-rtcc-ingest     # fixed: the broker keeps the session while away
      session_expiry_s: 86400
      shared_group: null                # e.g. police-rtcc: replicas share the alerts ($share/<group>/...)
    freshness: {window_s: 86400, max_skew_s: 300}
    retention: {purge_interval_s: 3600}
    console:
      host: 127.0.0.1                   # beyond loopback: tls_cert_file + tls_key_file, or allow_plain_http
      port: 8080
      tile_url: null                    # e.g. https://tiles.example/{z}/{x}/{y}.png; none: plain background

Several ingest replicas (`edge-agent console ingest --replica N`) share the
alerts when `broker.shared_group` is set: each subscribes to the sites'
alert filters as the MQTT 5 shared subscription `$share/<group>/<filter>`,
so the broker hands each alert to one of them, and each connects as
`<client_id>-<N>`, a session of its own that the broker keeps while it is
away. A replica's name must stay the same across its restarts (a systemd
instance number, a StatefulSet pod name), since what the broker holds for it
waits in that session. Site status and stats stay plain subscriptions: every
replica records them.

Several brokers (`broker.urls`, all `mqtt://` or all `mqtts://`, sharing the
other settings): with `connect_to: one` (the default) they are nodes of one
cluster, which hand messages between them: the service is connected to one
at a time, and when that connection ends it connects to the next
(`agent.agency.subscriber`), where its persistent session waits. With
`connect_to: every` they are separate brokers that share nothing (a failover
pair of Mosquittos): a site may publish to either, so the service keeps a
connection, and a session, on each (`agent.agency.receiver_group`) and
stores what any of them brings once. Statuses the console sends go to the
first broker that answers.

Relative paths (and a relative SQLite path) are taken from the file's own
folder. The file is read and validated like a site config, so every error
names the file, line and field (`agent.config.loader`).
"""

from __future__ import annotations

__all__ = [
    "BrokerSection",
    "ConsoleSection",
    "ReceivingConfig",
    "RetentionSection",
    "load_receiving_config",
]

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from agent.agency.alert_verifier import DEFAULT_MAX_SKEW_S, DEFAULT_WINDOW_S, Freshness
from agent.agency.broker_connection import BrokerUrl, ConnectionOptions, parse_broker_url
from agent.config.loader import validate_yaml_file
from agent.config.model import ConfigModel
from agent.delivery.credentials import read_password_file
from agent.errors import AgentError, ConfigError, ConfigIssue

PASSWORD_ENV = "EDGE_MQTT_PASSWORD"
MAX_BROKERS = 16
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
# A shared subscription's group and a replica's name: no MQTT wildcard or level separator.
_GROUP = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class BrokerSection(ConfigModel):
    """How the ingest service and the console reach the broker, or brokers (see the module docstring)."""

    url: str = Field(default="mqtt://127.0.0.1:1883", description="the broker, mqtt:// or mqtts://; else urls")
    urls: list[str] = Field(default_factory=list, max_length=MAX_BROKERS, description="several brokers, instead of url")
    connect_to: Literal["one", "every"] = Field(
        default="one",
        description="with urls: one (nodes of one cluster, connected to in turn) or every (separate brokers)",
    )
    protocol: Literal["5", "3.1.1"] = Field(
        default="5", description="MQTT version; 3.1.1 for a broker without MQTT 5 (no shared_group then)"
    )
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify_hostname: bool = True
    username: str | None = None
    password_file: Path | None = Field(default=None, description=f"first line is the password; else ${PASSWORD_ENV}")
    client_id: str = Field(default="", max_length=128, description="default: <recipient>-ingest")
    session_expiry_s: int = Field(default=86400, ge=0, le=2**32 - 1)
    shared_group: str | None = Field(
        default=None,
        pattern=_GROUP,
        description="ingest replicas subscribe to alerts as $share/<group>/<filter>: each alert goes to one",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parse_broker_url(value)
        except AgentError as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("urls")
    @classmethod
    def _urls(cls, values: list[str]) -> list[str]:
        try:
            parsed = [parse_broker_url(v) for v in values]
        except AgentError as err:
            raise ValueError(str(err)) from None
        if len({u.tls for u in parsed}) > 1:
            raise ValueError("use one scheme for every URL (all mqtt:// or all mqtts://): they share the TLS settings")
        if len(set(parsed)) < len(parsed):
            raise ValueError("a broker is listed twice")
        return values

    @model_validator(mode="after")
    def _one_broker_source(self) -> BrokerSection:
        if self.urls and "url" in self.model_fields_set:
            raise ValueError("give url (one broker) or urls (several), not both")
        if self.shared_group is not None and self.protocol != "5":
            raise ValueError("shared_group needs MQTT 5 shared subscriptions: protocol 3.1.1 has none")
        return self

    @property
    def broker_urls(self) -> tuple[BrokerUrl, ...]:
        """Every broker, in the order tried: `urls`, else `url`."""
        return tuple(parse_broker_url(u) for u in (self.urls or [self.url]))


class FreshnessSection(ConfigModel):
    window_s: float = Field(default=DEFAULT_WINDOW_S, gt=0)
    max_skew_s: float = Field(default=DEFAULT_MAX_SKEW_S, ge=0)


class RetentionSection(ConfigModel):
    """Alerts are kept until their `expires` (the agreement's requested retention); purged this often."""

    purge_interval_s: float = Field(default=3600.0, gt=0)


class LoginLimit(ConfigModel):
    """Failed logins allowed per user name and per client address within the window."""

    max_failures: int = Field(default=5, ge=1, le=1000)
    window_s: float = Field(default=300.0, gt=0)


class ConsoleSection(ConfigModel):
    """The web console."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    allow_plain_http: bool = Field(default=False, description="listen beyond loopback without TLS (behind a proxy)")
    session_secret_file: Path = Path("console-session.key")
    session_max_age_s: int = Field(default=12 * 3600, ge=60)
    audit_log: Path = Path("console-audit.jsonl")
    tile_url: str | None = Field(default=None, max_length=500)
    tile_attribution: str | None = Field(default=None, max_length=300)
    login: LoginLimit = LoginLimit()

    @model_validator(mode="after")
    def _tls_beyond_loopback(self) -> ConsoleSection:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if not is_loopback(self.host) and self.tls_cert_file is None and not self.allow_plain_http:
            raise ValueError(
                f"host {self.host} is beyond loopback: set tls_cert_file and tls_key_file, "
                "or allow_plain_http: true when a TLS proxy sits in front"
            )
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ReceivingConfig(ConfigModel):
    """One recipient's ingest service and console (see the module docstring)."""

    recipient: str = Field(pattern=_NAME)
    registry: Path
    status_key: Path | None = Field(default=None, description="without it no status is sent back")
    status_kid: str | None = None
    database: str = Field(default="", description="an SQLAlchemy URL; default receiving.sqlite beside the file")
    broker: BrokerSection = BrokerSection()
    freshness: FreshnessSection = FreshnessSection()
    retention: RetentionSection = RetentionSection()
    console: ConsoleSection = ConsoleSection()

    def connection(self, *, role: str, replica: str | None = None) -> ConnectionOptions:
        """Broker options for one process of this recipient (`role`: ingest, console): every broker of
        `broker.urls`, in order (`connect_to: every` takes them apart, one connection each).

        An ingest `replica` connects as `<client_id>-<replica>`: its own session.

        Raises:
            AgentError: a replica name that cannot be part of a client id.
        """
        b = self.broker
        password = read_password_file(b.password_file, "broker.password_file") if b.password_file else None
        client_id = (b.client_id or f"{self.recipient}-ingest") if role == "ingest" else ""
        if replica is not None and role == "ingest":
            if re.fullmatch(_GROUP, replica) is None:
                raise AgentError(f"replica name {replica!r}: up to 64 letters, digits and _ . - (no / + # or spaces)")
            client_id = f"{client_id}-{replica}"
        first, *more = b.broker_urls
        return ConnectionOptions(
            url=first,
            fallback_urls=tuple(more),
            protocol=b.protocol,
            ca_file=b.ca_file,
            cert_file=b.cert_file,
            key_file=b.key_file,
            verify_hostname=b.verify_hostname,
            username=b.username,
            password=password if password is not None else os.environ.get(PASSWORD_ENV),
            client_id=client_id,
            session_expiry_s=b.session_expiry_s if role == "ingest" else 0,
        )

    @property
    def freshness_policy(self) -> Freshness:
        return Freshness(window_s=self.freshness.window_s, max_skew_s=self.freshness.max_skew_s)


def _resolve(base: Path, path: Path | None) -> Path | None:
    return None if path is None or path.is_absolute() else base / path


def load_receiving_config(path: str | Path) -> ReceivingConfig:
    """Read, validate and resolve a receiving config file.

    Raises:
        ConfigError: every problem, each with file, line and field.
    """
    config, marked = validate_yaml_file(path, ReceivingConfig)
    base = Path(path).resolve().parent
    database = config.database or f"sqlite:///{base / 'receiving.sqlite'}"
    if database.startswith("sqlite:///") and not database.startswith("sqlite:////"):
        relative = database.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            database = f"sqlite:///{base / relative}"
    broker = config.broker.model_copy(
        update={k: _resolve(base, getattr(config.broker, k)) or None for k in ("ca_file", "cert_file", "key_file")}
        | {"password_file": _resolve(base, config.broker.password_file)}
    )
    console = config.console.model_copy(
        update={
            "tls_cert_file": _resolve(base, config.console.tls_cert_file),
            "tls_key_file": _resolve(base, config.console.tls_key_file),
            "session_secret_file": _resolve(base, config.console.session_secret_file)
            or config.console.session_secret_file,
            "audit_log": _resolve(base, config.console.audit_log) or config.console.audit_log,
        }
    )
    registry = _resolve(base, config.registry) or config.registry
    if not registry.is_file():
        line = marked.lines.get(("registry",))
        raise ConfigError([ConfigIssue(marked.file, line, "registry", f"no trust registry file at {registry}")])
    return config.model_copy(
        update={
            "registry": registry,
            "status_key": _resolve(base, config.status_key) or config.status_key,
            "database": database,
            "broker": broker,
            "console": console,
        }
    )
