"""Keyed pseudonyms for ids that could follow a place or a person across alerts.

Camera ids and track references leave the box as `HMAC-SHA256(site key,
group | site | kind | value)`, truncated to 80 bits and prefixed with the
kind (`cam-3f9a...`). The group is the recipient's own name unless its policy
puts it in a shared pseudonym group, so by default two recipients see
different pseudonyms for one camera and cannot join their data on it.

The key lives in a file created with mode 0600 on first use. Its key id (a
hash of the key, not the key) travels with each message, so a recipient can
tell when the key was rotated (by replacing the file) and pseudonyms changed.
"""

from __future__ import annotations

__all__ = ["PseudonymKey", "load_or_create_pseudonym_key"]

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from agent.errors import AgentError

_KEY_BYTES = 32
_DIGEST_HEX = 20  # 80 bits: collisions among a site's few cameras and tracks are out of reach


@dataclass(frozen=True, slots=True, repr=False)
class PseudonymKey:
    """A site's pseudonym key.

    Attributes:
        secret: the raw key; never logged or sent.
        key_id: `pk-` and 8 hex digits of SHA-256 of the key; safe to publish.
    """

    secret: bytes
    key_id: str

    @classmethod
    def from_secret(cls, secret: bytes) -> PseudonymKey:
        if len(secret) < 16:
            raise AgentError("pseudonym key is too short: need at least 16 bytes")
        return cls(secret, "pk-" + hashlib.sha256(b"pseudonym-key-id|" + secret).hexdigest()[:8])

    def pseudonym(self, kind: str, value: str, *, group: str, site_id: str) -> str:
        """The pseudonym of `value` (a camera id, a track id) for one linkage group."""
        message = "\x1f".join(("v1", group, site_id, kind, value)).encode("utf-8")
        digest = hmac.new(self.secret, message, hashlib.sha256).hexdigest()
        return f"{kind}-{digest[:_DIGEST_HEX]}"

    def __repr__(self) -> str:
        return f"PseudonymKey(key_id={self.key_id!r})"


def load_or_create_pseudonym_key(path: Path) -> PseudonymKey:
    """Read the key file (hex), creating it with mode 0600 when it does not exist.

    Raises:
        AgentError: the file cannot be read or created, or does not hold a hex key.
    """
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(_KEY_BYTES) + "\n")
                f.flush()
                os.fsync(f.fileno())
        text = path.read_text(encoding="ascii").strip()
    except FileExistsError:
        # Another process created it between our check and our open: read theirs.
        text = path.read_text(encoding="ascii").strip()
    except OSError as err:
        raise AgentError(f"cannot read or create pseudonym key {path}: {err.strerror or err}") from None
    try:
        return PseudonymKey.from_secret(bytes.fromhex(text))
    except ValueError:
        raise AgentError(f"pseudonym key {path} is not a hex string") from None
