"""Signed alert envelopes (Ed25519) and the keys and trust stores behind them.

Envelope (UTF-8 JSON, the alert stays readable)::

    {"alert": {...the alert object...},
     "signature": {"alg": "EdDSA", "kid": "<key id>", "iat": "<RFC 3339 UTC>",
                   "alert_id": "<alert id>", "sig": "<base64url, no padding>"}}

The signature covers `b"edge-alert-v1." + canonical(header) + b"." +
canonical(alert)`, where `header` is the `signature` object without `sig`
and `canonical` is JSON with sorted keys, no whitespace, UTF-8 and no ASCII
escaping (the same bytes as RFC 8785 for strings, integers and booleans;
alerts should carry floats with few digits). Ed25519 is deterministic, so
signing the same alert with the same key and `iat` gives identical bytes,
which keeps replays reproducible and lets the message id be a digest of the
payload.

Key id: by default the first 16 hex digits of the SHA-256 of the raw public
key. A trust directory holds one PEM public key per file named `<kid>.pem`
(`edge-agent keys export-public` writes them); the file name is the key id
the verifier looks up.

Rotating a site key without downtime:
1. `edge-agent keys generate --out var/keys/site-signing-2.pem`
2. `edge-agent keys export-public --key var/keys/site-signing-2.pem --out DIR`
   and give the file to every agency, which adds it to its trust directory
   next to the old one (both verify during the overlap).
3. Point `signing.key_file` at the new key and restart the agent.
4. Once the outbox holds nothing signed with the old key (and expiry has
   passed), agencies delete the old `<kid>.pem`.
"""

from __future__ import annotations

__all__ = [
    "AlertSigner",
    "SignatureInvalid",
    "TrustStore",
    "VerifiedAlert",
    "canonical_json",
    "export_public_key",
    "generate_key_file",
    "key_id_for",
    "load_or_create_signing_key",
    "load_signing_key",
    "verify_envelope",
]

import base64
import binascii
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.alerts.times import iat_time
from agent.errors import AgentError
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.signing")

_DOMAIN = b"edge-alert-v1."
ALG = "EdDSA"


class SignatureInvalid(AgentError):
    """An envelope is malformed, signed by an unknown key, or its signature does not verify.

    Attributes:
        kid: key id named in the envelope, when it could be read.
    """

    def __init__(self, message: str, *, kid: str | None = None) -> None:
        self.kid = kid
        super().__init__(message)


def canonical_json(value: Any) -> bytes:
    """The canonical serialisation signatures are computed over (see module docstring)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id_for(public_key: Ed25519PublicKey) -> str:
    """Default key id: first 16 hex digits of SHA-256 over the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _signing_input(header: Mapping[str, Any], alert: Mapping[str, Any]) -> bytes:
    return _DOMAIN + canonical_json(dict(header)) + b"." + canonical_json(dict(alert))


def generate_key_file(path: Path) -> Ed25519PrivateKey:
    """Write a new Ed25519 private key (PEM, PKCS#8) readable by the owner only.

    Raises:
        AgentError: the file exists or cannot be written.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never overwrite a key; 0600 from the start, not chmod after the fact.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    except FileExistsError:
        raise AgentError(f"{path} already exists; refusing to overwrite a signing key") from None
    except OSError as err:
        raise AgentError(f"cannot write signing key {path}: {err}") from err
    log_event(_log, "signing_key_created", path=path, kid=key_id_for(key.public_key()))
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key (PEM).

    Raises:
        AgentError: missing, unreadable, or not an Ed25519 key.
    """
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise AgentError(f"cannot read signing key {path}: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise AgentError(f"{path} is not an Ed25519 private key")
    return key


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the key at `path`, creating it (mode 0600, logged) when the file does not exist."""
    if not path.exists():
        return generate_key_file(path)
    return load_signing_key(path)


def export_public_key(key: Ed25519PrivateKey, out_dir: Path, kid: str | None = None) -> Path:
    """Write the public key as `<out_dir>/<kid>.pem` for an agency's trust directory."""
    kid = kid or key_id_for(key.public_key())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{kid}.pem"
    path.write_bytes(pem)
    return path


class AlertSigner:
    """Signs alert objects into envelopes with one key.

    Args:
        key: the site's private key.
        kid: key id put in each envelope; default `key_id_for(public key)`.
    """

    def __init__(self, key: Ed25519PrivateKey, kid: str | None = None) -> None:
        self._key = key
        self.kid = kid or key_id_for(key.public_key())

    @classmethod
    def from_file(cls, key_file: Path, kid: str | None = None) -> AlertSigner:
        """Signer for `signing.key_file` / `signing.key_id`, creating the key when missing."""
        return cls(load_or_create_signing_key(key_file), kid)

    def sign(self, alert: Mapping[str, Any], alert_id: str, issued_at: datetime) -> bytes:
        """Return the envelope bytes for `alert` (deterministic for the same inputs).

        Raises:
            AgentError: `issued_at` is naive, or the alert is not JSON-serialisable.
        """
        if issued_at.tzinfo is None:
            raise AgentError("issued_at must be timezone-aware")
        iat = iat_time(issued_at)
        header = {"alg": ALG, "kid": self.kid, "iat": iat, "alert_id": alert_id}
        try:
            signature = self._key.sign(_signing_input(header, alert))
        except (TypeError, ValueError) as err:
            raise AgentError(f"alert {alert_id} cannot be serialised: {err}") from err
        envelope = {"alert": alert, "signature": {**header, "sig": _b64url(signature)}}
        return canonical_json(envelope)


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Public keys an agency trusts, by key id."""

    keys: Mapping[str, Ed25519PublicKey]

    @classmethod
    def from_dir(cls, directory: Path) -> TrustStore:
        """Load every `<kid>.pem` in `directory`.

        Raises:
            AgentError: the directory is missing or a file is not an Ed25519 public key.
        """
        if not directory.is_dir():
            raise AgentError(f"trust directory {directory} does not exist")
        keys: dict[str, Ed25519PublicKey] = {}
        for path in sorted(directory.glob("*.pem")):
            try:
                key = serialization.load_pem_public_key(path.read_bytes())
            except (OSError, ValueError) as err:
                raise AgentError(f"cannot read public key {path}: {err}") from err
            if not isinstance(key, Ed25519PublicKey):
                raise AgentError(f"{path} is not an Ed25519 public key")
            keys[path.stem] = key
        if not keys:
            raise AgentError(f"trust directory {directory} holds no <kid>.pem public keys")
        return cls(keys)


@dataclass(frozen=True, slots=True)
class VerifiedAlert:
    """An envelope whose signature verified."""

    alert: dict[str, Any]
    alert_id: str
    kid: str
    issued_at: datetime


def verify_envelope(payload: bytes, trust: TrustStore | Mapping[str, Ed25519PublicKey]) -> VerifiedAlert:
    """Check an envelope's signature against the trusted keys and return its alert.

    Raises:
        SignatureInvalid: malformed envelope, unknown key id, or a bad signature.
    """
    keys = trust.keys if isinstance(trust, TrustStore) else trust
    try:
        envelope = json.loads(payload)
        alert, sig_block = envelope["alert"], envelope["signature"]
        header = {k: sig_block[k] for k in ("alg", "kid", "iat", "alert_id")}
        signature = _b64url_decode(sig_block["sig"])
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise SignatureInvalid(f"malformed envelope: {err}") from None
    if not isinstance(alert, dict) or not all(isinstance(v, str) for v in header.values()):
        raise SignatureInvalid("malformed envelope: wrong field types")
    kid = header["kid"]
    if header["alg"] != ALG:
        raise SignatureInvalid(f"unsupported alg {header['alg']!r}", kid=kid)
    key = keys.get(kid)
    if key is None:
        raise SignatureInvalid(f"unknown key id {kid!r}", kid=kid)
    try:
        key.verify(signature, _signing_input(header, alert))
        issued_at = datetime.fromisoformat(header["iat"].replace("Z", "+00:00"))
    except InvalidSignature:
        raise SignatureInvalid(f"signature does not verify (kid {kid})", kid=kid) from None
    except ValueError:
        raise SignatureInvalid(f"bad iat {header['iat']!r}", kid=kid) from None
    return VerifiedAlert(alert, header["alert_id"], kid, issued_at)
