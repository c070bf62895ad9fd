"""JWS envelopes (RFC 7515 flattened JSON serialization, `alg: Ed25519` of RFC 9864) and Ed25519 JWKs.

Every message that crosses the broker, an alert from a site or a status from
a recipient, is one UTF-8 JSON object::

    {"protected": "<base64url of {"alg":"Ed25519","kid":"<key id>","typ":"<type>"}>",
     "payload": "<base64url of the message's UTF-8 JSON bytes>",
     "signature": "<base64url of the Ed25519 signature>"}

so any JOSE library verifies it with the sender's public JWK and no
canonicalisation: the payload bytes are what was signed. `typ` says what the
payload is (`TYP_ALERT`, `TYP_STATUS`), so an alert can never be passed off
as a status or the other way round. A key id is the key's RFC 7638 JWK
thumbprint (SHA-256, base64url) unless a config names another.

Parsing comes before trust: `open_envelope` bounds the size and nesting of
what it reads before any JSON parser sees it, and reads the header without
verifying, so the caller can pick the one key the registry allows for the
claimed sender; `verify_envelope` then checks the signature with that key.
The signing and verifying are joserfc's; this module only fixes the profile.
"""

from __future__ import annotations

__all__ = [
    "ALG",
    "MAX_DEPTH",
    "MAX_ENVELOPE_BYTES",
    "TYP_ALERT",
    "TYP_STATUS",
    "EnvelopeInvalid",
    "OpenedEnvelope",
    "jwk_set",
    "key_id_for",
    "load_json_bounded",
    "open_envelope",
    "public_jwk",
    "public_key_from_jwk",
    "sign_envelope",
    "verify_envelope",
]

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from agent.errors import AgentError

ALG = "Ed25519"
TYP_ALERT = "edge-alert+json"
TYP_STATUS = "edge-status+json"
# An alert with a snapshot is a few hundred kB of base64; nothing legitimate is near 2 MiB.
MAX_ENVELOPE_BYTES = 2 * 1024 * 1024
# The alert schema nests 4 levels; 32 leaves room for growth and none for a recursion bomb.
MAX_DEPTH = 32
_HEADER_KEYS = frozenset({"alg", "kid", "typ"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# A JSON string, escapes included (unrolled so that long strings match in linear time).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_DEPTH_STEP = np.zeros(256, np.int8)  # by byte: +1 opens an object or array, -1 closes one
_DEPTH_STEP[[ord("{"), ord("[")]] = 1
_DEPTH_STEP[[ord("}"), ord("]")]] = -1


class EnvelopeInvalid(AgentError):
    """A message is not a well-formed envelope of this profile, or its signature does not verify.

    Attributes:
        reason: a short machine-readable cause (`too_large`, `too_deep`, `not_json`,
            `malformed`, `bad_header`, `bad_signature`).
        kid: the key id the header names, when it could be read.
    """

    def __init__(self, reason: str, message: str, *, kid: str | None = None) -> None:
        self.reason = reason
        self.kid = kid
        super().__init__(message)


def _b64url_decode(text: str) -> bytes:
    # The URL-safe alphabet only: `altchars` alone would also let `+` and `/` through.
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        raise ValueError("not unpadded base64url")
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _too_deep(data: bytes, max_depth: int) -> bool:
    """Whether objects and arrays nest deeper than `max_depth`, counted outside strings, without parsing.

    Counting is done in C (bytes.count, re, NumPy): a hostile megabyte of brackets costs
    milliseconds, not the seconds a Python loop over each byte would.
    """
    if data.count(b"{") + data.count(b"[") <= max_depth:
        return False  # the usual case: too few brackets to nest that deep
    outside = np.frombuffer(_STRING.sub(b'""', data), np.uint8)
    return bool(np.cumsum(_DEPTH_STEP[outside], dtype=np.int32).max(initial=0) > max_depth)


def load_json_bounded(data: bytes, *, max_bytes: int = MAX_ENVELOPE_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse untrusted UTF-8 JSON after checking its size and nesting (a parser never recurses deep).

    Raises:
        EnvelopeInvalid: too large, too deeply nested, not UTF-8 or not JSON.
    """
    if len(data) > max_bytes:
        raise EnvelopeInvalid("too_large", f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    if _too_deep(data, max_depth):
        raise EnvelopeInvalid("too_deep", f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise EnvelopeInvalid("not_json", f"not UTF-8 JSON: {err}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """An envelope read but not yet verified: trust nothing here until `verify_envelope` passes.

    Attributes:
        kid, typ: from the protected header.
        payload: the signed bytes (the message's JSON).
        serialized: the envelope as parsed, for the verifier.
    """

    kid: str
    typ: str
    payload: bytes
    serialized: Mapping[str, Any]


def open_envelope(data: bytes, *, max_bytes: int = MAX_ENVELOPE_BYTES) -> OpenedEnvelope:
    """Read an envelope's header and payload, bounded, without verifying.

    Raises:
        EnvelopeInvalid: anything but a flattened JWS of this profile.
    """
    outer = load_json_bounded(data, max_bytes=max_bytes, max_depth=2)
    if not isinstance(outer, dict) or set(outer) != {"protected", "payload", "signature"}:
        raise EnvelopeInvalid("malformed", "not a flattened JWS (protected, payload, signature)")
    try:
        header = json.loads(_b64url_decode(outer["protected"]))
        payload = _b64url_decode(outer["payload"])
        _b64url_decode(outer["signature"])
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise EnvelopeInvalid("malformed", f"bad base64url or header: {err}") from None
    if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
        raise EnvelopeInvalid("bad_header", "protected header must hold exactly alg, kid and typ")
    kid, typ, alg = header["kid"], header["typ"], header["alg"]
    if not all(isinstance(v, str) and 0 < len(v) <= 200 for v in (kid, typ, alg)):
        raise EnvelopeInvalid("bad_header", "alg, kid and typ must be short strings")
    if alg != ALG:
        raise EnvelopeInvalid("bad_header", f"alg {alg!r} is not accepted (only {ALG})", kid=kid)
    return OpenedEnvelope(kid, typ, payload, outer)


def verify_envelope(opened: OpenedEnvelope, key: Ed25519PublicKey) -> bytes:
    """The payload bytes, once the signature verifies with `key`.

    Raises:
        EnvelopeInvalid: the signature does not verify.
    """
    try:
        flattened = cast(jws.FlattenedJSONSerialization, dict(opened.serialized))
        jws.deserialize_json(flattened, OKPKey.import_key(key), algorithms=[ALG])
    except (JoseError, ValueError) as err:
        raise EnvelopeInvalid("bad_signature", f"signature does not verify (kid {opened.kid})", kid=opened.kid) from (
            err
        )
    return opened.payload


def sign_envelope(payload: bytes, key: Ed25519PrivateKey, kid: str, typ: str) -> bytes:
    """The envelope of `payload` (already the message's UTF-8 JSON), signed with `key`."""
    # The key object goes to joserfc as it is: a PEM round trip per message cost more than the signature.
    private = OKPKey.import_key(key)
    value = jws.serialize_json({"protected": {"alg": ALG, "kid": kid, "typ": typ}}, payload, private, algorithms=[ALG])
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def key_id_for(key: Ed25519PublicKey) -> str:
    """The key's RFC 7638 JWK thumbprint (SHA-256, base64url): any JOSE library computes the same."""
    return str(OKPKey.import_key(key).thumbprint())


def public_jwk(key: Ed25519PublicKey, kid: str | None = None) -> dict[str, str]:
    """The public key as an RFC 7517 JWK, with `kid`, `alg` and `use: sig`."""
    jwk = {str(k): str(v) for k, v in OKPKey.import_key(key).as_dict(private=False).items()}
    return {**jwk, "kid": kid or key_id_for(key), "alg": ALG, "use": "sig"}


def jwk_set(keys: Sequence[Mapping[str, str]]) -> dict[str, list[dict[str, str]]]:
    """An RFC 7517 JWK Set of public JWKs."""
    return {"keys": [dict(k) for k in keys]}


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """The Ed25519 public key of a JWK (`kty: OKP`, `crv: Ed25519`, `x`); private members are refused.

    Raises:
        ValueError: not an Ed25519 public JWK.
    """
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise ValueError("not an Ed25519 JWK (kty OKP, crv Ed25519, x)")
    if "d" in jwk:
        raise ValueError("the JWK holds a private key (d); give the public key only")
    raw = _b64url_decode(jwk["x"])
    if len(raw) != 32:
        raise ValueError("x must be 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)
