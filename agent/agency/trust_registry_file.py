"""The trust registry file: YAML, read and validated like a site config (file, line and field in every error).

::

    sites:
      - site_id: depot-north
        name: Depot North                 # optional
        topic_prefix: edge                # alerts must arrive under edge/depot-north/...
        keys:
          - jwk: {kty: OKP, crv: Ed25519, x: "...", kid: "..."}   # or  jwk_file: keys/depot-north.jwk
            not_before: 2026-01-01T00:00:00Z                      # optional
            not_after: 2027-01-01T00:00:00Z                       # optional
        revoked: ["<kid>"]                # optional

A `jwk_file` (relative to the registry file) holds one public JWK or a JWK
Set, as `edge-agent keys export-public` writes them; every key of a set gets
the entry's window. A key's id is its JWK `kid`, else its RFC 7638
thumbprint. The file goes through the site config's reader
(`agent.config.loader`: size, nesting and alias bounds, `${ENV}`
placeholders, line marks), and is refused as a whole, with every problem
listed, when a site id or key id is given twice, one key is registered to
two sites, a JWK is not an Ed25519 public key (a private `d` included) or a
window ends before it starts.
"""

from __future__ import annotations

__all__ = ["KeyEntry", "RegistryFile", "SiteEntry", "load_registry"]

from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, Field, field_validator, model_validator

from agent.agency.trust_registry import RegisteredKey, RegisteredSite, TrustRegistry
from agent.config.loader import MarkedData, validate_yaml_file
from agent.config.model import ID_PATTERN, ConfigModel
from agent.delivery.jws import EnvelopeInvalid, key_id_for, load_json_bounded, public_key_from_jwk
from agent.delivery.topics import build_topic
from agent.errors import ConfigError, ConfigIssue

MAX_JWK_FILE_BYTES = 64 * 1024
_ALGS = (None, "Ed25519", "EdDSA")


def _check_jwk(jwk: Any) -> dict[str, Any]:
    """`jwk` when it is an Ed25519 public JWK meant for signatures.

    Raises:
        ValueError: anything else, in words.
    """
    if not isinstance(jwk, dict):
        raise ValueError("a JWK is a JSON object")
    public_key_from_jwk(jwk)
    if jwk.get("alg") not in _ALGS:
        raise ValueError(f"alg {jwk.get('alg')!r} is not Ed25519")
    if jwk.get("use") not in (None, "sig"):
        raise ValueError(f"use {jwk.get('use')!r} is not sig")
    if "kid" in jwk and not (isinstance(jwk["kid"], str) and 0 < len(jwk["kid"]) <= 200):
        raise ValueError("kid must be a short string")
    return jwk


class KeyEntry(ConfigModel):
    """One key of a site: a JWK inline or in a file, and its window."""

    jwk: dict[str, Any] | None = Field(default=None, description="the public JWK (kty OKP, crv Ed25519, x)")
    jwk_file: Path | None = Field(default=None, description="a JWK or JWK Set file, relative to the registry")
    not_before: AwareDatetime | None = Field(default=None, description="in force from (RFC 3339, with offset)")
    not_after: AwareDatetime | None = Field(default=None, description="in force until (exclusive)")

    @field_validator("jwk")
    @classmethod
    def _public_ed25519(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _check_jwk(value)

    @model_validator(mode="after")
    def _one_source_and_a_window(self) -> KeyEntry:
        if (self.jwk is None) == (self.jwk_file is None):
            raise ValueError("give exactly one of jwk and jwk_file")
        if self.not_before is not None and self.not_after is not None and self.not_after <= self.not_before:
            raise ValueError("not_after must be later than not_before")
        return self


class SiteEntry(ConfigModel):
    """One site the receiver trusts."""

    site_id: str = Field(pattern=ID_PATTERN, description="the site id its alerts carry")
    name: str | None = Field(default=None, max_length=200, description="for people")
    topic_prefix: str = Field(default="edge", description="its alerts arrive under <topic_prefix>/<site_id>/")
    keys: list[KeyEntry] = Field(min_length=1, description="its public keys (two during a rotation)")
    revoked: list[str] = Field(default=[], description="key ids no longer trusted, whatever their window")

    @field_validator("topic_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        try:
            return build_topic(value)
        except ConfigError as err:
            raise ValueError(err.issues[0].reason) from None


class RegistryFile(ConfigModel):
    sites: list[SiteEntry] = Field(min_length=1, description="the trusted sites")


def load_registry(path: str | Path) -> TrustRegistry:
    """Read and validate a trust registry file.

    Raises:
        ConfigError: every problem found, each with file, line and field.
    """
    parsed, marked = validate_yaml_file(path, RegistryFile)
    return _Builder(marked, Path(path).resolve().parent).build(parsed)


class _Builder:
    """From the validated file to a `TrustRegistry`: reads key files, checks what spans entries."""

    def __init__(self, marked: MarkedData, base: Path) -> None:
        self._marked = marked
        self._base = base
        self._issues: list[ConfigIssue] = []
        self._kid_owner: dict[str, str] = {}
        self._thumb_owner: dict[str, str] = {}

    def _issue(self, path: tuple[str | int, ...], reason: str) -> None:
        line = next(
            (self._marked.lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in self._marked.lines), None
        )
        self._issues.append(ConfigIssue(self._marked.file, line, ".".join(str(p) for p in path), reason))

    def build(self, parsed: RegistryFile) -> TrustRegistry:
        sites: list[RegisteredSite] = []
        seen_sites: set[str] = set()
        for i, entry in enumerate(parsed.sites):
            if entry.site_id in seen_sites:
                self._issue(("sites", i, "site_id"), f"site {entry.site_id!r} is listed twice")
            seen_sites.add(entry.site_id)
            sites.append(self._site(i, entry))
        self._check_revocations(parsed)
        if self._issues:
            raise ConfigError(sorted(self._issues, key=lambda x: (x.line or 0, x.field)))
        return TrustRegistry(sites, source=self._marked.file)

    def _site(self, i: int, entry: SiteEntry) -> RegisteredSite:
        keys: list[RegisteredKey] = []
        for k, key_entry in enumerate(entry.keys):
            where: tuple[str | int, ...] = ("sites", i, "keys", k, "jwk" if key_entry.jwk is not None else "jwk_file")
            for jwk in self._jwks(key_entry, where):
                public = public_key_from_jwk(jwk)
                thumb = key_id_for(public)
                kid = str(jwk.get("kid") or thumb)
                owner = self._kid_owner.setdefault(kid, entry.site_id)
                thumb_owner = self._thumb_owner.setdefault(thumb, entry.site_id)
                if owner != entry.site_id or any(key.kid == kid for key in keys):
                    self._issue(where, f"key id {kid!r} is already registered (to site {owner})")
                elif thumb_owner != entry.site_id:
                    self._issue(
                        where, f"this key is already registered to site {thumb_owner}: a key belongs to one site"
                    )
                keys.append(RegisteredKey(kid, entry.site_id, public, key_entry.not_before, key_entry.not_after))
        return RegisteredSite(entry.site_id, entry.topic_prefix, tuple(keys), entry.name, frozenset(entry.revoked))

    def _jwks(self, entry: KeyEntry, where: tuple[str | int, ...]) -> list[dict[str, Any]]:
        if entry.jwk is not None:
            return [entry.jwk]
        assert entry.jwk_file is not None  # one of the two, by the model's validator
        path = entry.jwk_file if entry.jwk_file.is_absolute() else self._base / entry.jwk_file
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_JWK_FILE_BYTES + 1)
            data = load_json_bounded(raw, max_bytes=MAX_JWK_FILE_BYTES, max_depth=4)
        except OSError as err:
            self._issue(where, f"cannot read {path}: {err.strerror or err}")
            return []
        except EnvelopeInvalid as err:
            self._issue(where, f"{path} is not a JWK file: {err}")
            return []
        items = data.get("keys") if isinstance(data, dict) and "keys" in data else [data]
        if not isinstance(items, list) or not items:
            self._issue(where, f"{path}: a JWK Set's keys must be a non-empty list")
            return []
        good = []
        for n, jwk in enumerate(items):
            try:
                good.append(_check_jwk(jwk))
            except ValueError as err:
                label = f"{path} key {n}" if len(items) > 1 else str(path)
                self._issue(where, f"{label}: {err}")
        return good

    def _check_revocations(self, parsed: RegistryFile) -> None:
        for i, entry in enumerate(parsed.sites):
            for r, kid in enumerate(entry.revoked):
                owner = self._kid_owner.get(kid, entry.site_id)
                if owner != entry.site_id:
                    self._issue(("sites", i, "revoked", r), f"key id {kid!r} belongs to site {owner}, not this one")
