"""A recipient's status-signing keys, as the site is given them: one JWK, or a JWK Set (RFC 7517).

A site verifies each status a recipient sends back with the public key(s)
named by that recipient's `feedback_keys` file. The file holds one public
Ed25519 JWK (`{"kty": "OKP", "crv": "Ed25519", "x": ..., "kid": ...}`) or a
JWK Set (`{"keys": [...]}`), so a recipient rotating its key hands over a set
with the old and the new key, and the site accepts both until the old one is
removed. A key without `kid` is known by its RFC 7638 thumbprint, which is
what `agent.delivery.jws.key_id_for` computes and what a sender puts in its
header by default. Private keys (`d`), other key types, a `use` other than
`sig` and an `alg` other than Ed25519/EdDSA are refused: the file is config,
and a mistake in it must be said at start, not found as a rejected status.
"""

from __future__ import annotations

__all__ = ["MAX_KEY_FILE_BYTES", "read_feedback_keys"]

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.delivery.jws import EnvelopeInvalid, key_id_for, load_json_bounded, public_key_from_jwk

MAX_KEY_FILE_BYTES = 65536
_MAX_KEYS = 16
_ALGS = (None, "Ed25519", "EdDSA")


def read_feedback_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """The public keys of one JWK or JWK Set file, by key id.

    Raises:
        ValueError: the file is missing, unreadable, or not a JWK (Set) of public Ed25519 keys;
            the message says which, in words.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"key file {path} does not exist") from None
    except OSError as err:
        raise ValueError(f"cannot read key file {path}: {err.strerror or err}") from None
    try:
        doc = load_json_bounded(data, max_bytes=MAX_KEY_FILE_BYTES, max_depth=4)
    except EnvelopeInvalid as err:
        raise ValueError(f"key file {path} is not a JWK or JWK Set: {err}") from None
    if isinstance(doc, dict) and "keys" in doc:
        jwks = doc["keys"]
        if not isinstance(jwks, list) or not jwks:
            raise ValueError(f"key file {path}: `keys` must be a non-empty list of JWKs")
    elif isinstance(doc, dict):
        jwks = [doc]
    else:
        raise ValueError(f"key file {path} is not a JWK or JWK Set (a JSON object)")
    if len(jwks) > _MAX_KEYS:
        raise ValueError(f"key file {path} holds {len(jwks)} keys, more than {_MAX_KEYS}")
    keys: dict[str, Ed25519PublicKey] = {}
    for n, jwk in enumerate(jwks):
        where = f"key file {path}, key {n}" if len(jwks) > 1 else f"key file {path}"
        kid, key = _one_key(jwk, where)
        if kid in keys:
            raise ValueError(f"{where}: key id {kid!r} appears twice")
        keys[kid] = key
    return keys


def _one_key(jwk: Any, where: str) -> tuple[str, Ed25519PublicKey]:
    if not isinstance(jwk, Mapping):
        raise ValueError(f"{where}: not a JWK (a JSON object)")
    try:
        key = public_key_from_jwk(jwk)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if jwk.get("use", "sig") != "sig":
        raise ValueError(f"{where}: use {jwk.get('use')!r} is not a signing key (use: sig)")
    if jwk.get("alg") not in _ALGS:
        raise ValueError(f"{where}: alg {jwk.get('alg')!r} is not Ed25519")
    kid = jwk.get("kid")
    if kid is None:
        return key_id_for(key), key
    if not isinstance(kid, str) or not 0 < len(kid) <= 200:
        raise ValueError(f"{where}: kid must be a short string")
    return kid, key
