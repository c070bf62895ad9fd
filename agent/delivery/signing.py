"""The site's alert-signing key: key files, the signer, and the public key files agencies register.

Every alert leaves the box as a JWS (`agent.delivery.jws`: flattened JSON
serialization, `alg: Ed25519`, `typ: edge-alert+json`) whose payload is the
recipient's view of the alert as compact UTF-8 JSON. The payload bytes are
what is signed, so a receiver verifies them with any JOSE library and the
site's public JWK, without canonicalising anything. Ed25519 is
deterministic and the view's key order is fixed by the schema, so the same
view signed with the same key gives identical bytes: replays repeat, and
the message id (a digest of the payload) is stable across retries.

The private key is a PEM (PKCS#8) file, created with mode 0600 and never
overwritten. Its key id is the RFC 7638 JWK thumbprint of the public key
(`jws.key_id_for`), which every JOSE library computes the same way, unless
`signing.key_id` in the site config names another. `write_public_key_files`
(`edge-agent keys export-public`) writes the public key as a JWK and as a
JWK Set, with that key id, for the agencies' trust registries.

Rotating a site key without downtime:
1. `edge-agent keys generate --out var/keys/site-signing-2.pem`
2. `edge-agent keys export-public --key var/keys/site-signing-2.pem --out DIR`
   and give `DIR/site-signing-2.jwk` to every agency, which adds it to the
   site's `keys` in its trust registry next to the old one (both verify
   during the overlap; `not_before`/`not_after` bound each).
3. Point `signing.key_file` at the new key and restart the agent.
4. Once the outbox holds nothing signed with the old key (and expiry has
   passed), agencies remove the old key or list its kid under `revoked`.
"""

from __future__ import annotations

__all__ = [
    "AlertSigner",
    "PublicKeyFiles",
    "generate_key_file",
    "load_or_create_signing_key",
    "load_signing_key",
    "payload_bytes",
    "write_public_key_files",
]

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.delivery import jws
from agent.errors import AgentError
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.signing")


def payload_bytes(message: Mapping[str, Any]) -> bytes:
    """A message's JSON as it is signed: compact, UTF-8, keys in the order given, no NaN or Infinity.

    Raises:
        AgentError: the message holds something JSON cannot carry.
    """
    try:
        text = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise AgentError(f"message cannot be serialised as JSON: {err}") from err
    return text.encode("utf-8")


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
    log_event(_log, "signing_key_created", path=path, kid=jws.key_id_for(key.public_key()))
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


@dataclass(frozen=True, slots=True)
class PublicKeyFiles:
    """What `write_public_key_files` wrote.

    Attributes:
        kid: the key id in the files.
        jwk: `<name>.jwk`, the public key as one RFC 7517 JWK.
        jwk_set: `<name>.jwks.json`, a JWK Set holding that one key.
        pem: `<name>.pub.pem` (SubjectPublicKeyInfo), when asked for.
    """

    kid: str
    jwk: Path
    jwk_set: Path
    pem: Path | None = None


def write_public_key_files(
    key: Ed25519PrivateKey, out_dir: Path, name: str, *, kid: str | None = None, pem: bool = False
) -> PublicKeyFiles:
    """Write the public half of `key` into `out_dir` as `<name>.jwk` and `<name>.jwks.json` (and `.pub.pem`).

    Public keys are not secret: the files are world-readable and replaced when they exist.

    Raises:
        AgentError: the name is not a plain file name, or the files cannot be written.
    """
    if not name or name != Path(name).name or name.startswith((".", "-")):
        raise AgentError(f"public key name {name!r} must be a plain file name (no folders, no leading . or -)")
    public = key.public_key()
    kid = kid or jws.key_id_for(public)
    jwk = jws.public_jwk(public, kid)
    files = PublicKeyFiles(
        kid=kid,
        jwk=out_dir / f"{name}.jwk",
        jwk_set=out_dir / f"{name}.jwks.json",
        pem=out_dir / f"{name}.pub.pem" if pem else None,
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        files.jwk.write_text(json.dumps(jwk, indent=2) + "\n", encoding="utf-8")
        files.jwk_set.write_text(json.dumps(jws.jwk_set([jwk]), indent=2) + "\n", encoding="utf-8")
        if files.pem is not None:
            spki = serialization.PublicFormat.SubjectPublicKeyInfo
            files.pem.write_bytes(public.public_bytes(serialization.Encoding.PEM, spki))
    except OSError as err:
        raise AgentError(f"cannot write public key files in {out_dir}: {err}") from err
    return files


class AlertSigner:
    """Signs recipients' views of alerts into JWS envelopes with one key.

    Args:
        key: the site's private key.
        kid: key id put in each envelope's header; default: the key's RFC 7638 thumbprint.
    """

    def __init__(self, key: Ed25519PrivateKey, kid: str | None = None) -> None:
        self._key = key
        self.kid = kid or jws.key_id_for(key.public_key())

    @classmethod
    def from_file(cls, key_file: Path, kid: str | None = None) -> AlertSigner:
        """Signer for `signing.key_file` / `signing.key_id`, creating the key when missing."""
        return cls(load_or_create_signing_key(key_file), kid)

    def public_jwk(self) -> dict[str, str]:
        """The public key as the JWK a receiver verifies with (this signer's `kid`)."""
        return jws.public_jwk(self._key.public_key(), self.kid)

    def sign(self, message: Mapping[str, Any]) -> bytes:
        """The envelope of `message` (one recipient's view, JSON-ready): deterministic for the same input.

        Raises:
            AgentError: the message is not JSON-serialisable.
        """
        return jws.sign_envelope(payload_bytes(message), self._key, self.kid, jws.TYP_ALERT)
