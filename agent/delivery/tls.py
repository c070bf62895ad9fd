"""The one TLS policy for MQTT clients: how a broker connection is secured.

The site's publisher and the agency's subscriber both connect to a broker
with `client_tls_context`: the broker's certificate is verified against the
given CA bundle (the system store when none is given), its name is checked
unless switched off, a client certificate is presented when one is given,
and nothing older than TLS 1.2 is spoken. A file that cannot be used is
named in the error, so an installer sees which setting to fix.
"""

from __future__ import annotations

__all__ = ["MIN_TLS_VERSION", "client_tls_context", "use_tls"]

import ssl
from pathlib import Path

import paho.mqtt.client as paho

from agent.errors import AgentError

MIN_TLS_VERSION = ssl.TLSVersion.TLSv1_2


def _check_readable(path: Path, what: str) -> None:
    # ssl reports a missing file as a bare errno and a bad one without its name: say which.
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise AgentError(f"cannot read TLS {what} {path}: {err.strerror or err}") from None


def _reason(err: OSError) -> str:
    return str(getattr(err, "reason", None) or err.strerror or err)


def client_tls_context(
    *,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    verify_hostname: bool = True,
) -> ssl.SSLContext:
    """A client context that verifies the broker.

    Args:
        ca_file: CA bundle (PEM) that signed the broker's certificate; None uses the system store.
        cert_file: client certificate (PEM) for mutual TLS; it may hold the key too.
        key_file: the client certificate's private key (PEM).
        verify_hostname: check the broker's name against its certificate (the chain is always verified).

    Raises:
        AgentError: a file cannot be read or is not a usable certificate or key; names the file.
    """
    if key_file is not None and cert_file is None:
        raise AgentError(f"TLS client key {key_file} given without its client certificate")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = MIN_TLS_VERSION
    if ca_file is not None:
        _check_readable(ca_file, "CA file")
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except OSError as err:  # ssl.SSLError is one
            raise AgentError(f"TLS CA file {ca_file} holds no usable certificate: {_reason(err)}") from None
    if cert_file is not None:
        _check_readable(cert_file, "client certificate")
        if key_file is not None:
            _check_readable(key_file, "client key")
        try:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file is not None else None)
        except OSError as err:  # ssl.SSLError is one
            files = f"{cert_file} and key {key_file}" if key_file is not None else str(cert_file)
            raise AgentError(f"TLS client certificate {files} cannot be used: {_reason(err)}") from None
    context.check_hostname = verify_hostname
    return context


def use_tls(client: paho.Client, context: ssl.SSLContext) -> None:
    """Make `client` connect with `context`; paho's own name check follows the context's."""
    client.tls_set_context(context)
    client.tls_insecure_set(not context.check_hostname)
