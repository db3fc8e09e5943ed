"""Ed25519 keys: generation, raw/PEM encodings, JWK form and key ids, and the
lookup of agencies' registered keys that signature checks run against.

A public key travels and is stored as its 32 raw bytes; its key id (`kid`) is
the RFC 7638 JWK thumbprint, so anyone holding the key can compute the id."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ALGORITHM = "EdDSA"  # the JOSE name of Ed25519 signatures, the only kind used here


def generate_private_key() -> Ed25519PrivateKey:
    """Return a fresh random Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def public_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """Return the 32 raw bytes of the public key (of a private key's pair)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@functools.lru_cache(maxsize=1024)
def load_public_raw(raw: bytes) -> Ed25519PublicKey:
    """Return the public key of 32 raw bytes; ValueError for any other length.

    Remembered: every message and token check loads its sender's key."""
    return Ed25519PublicKey.from_public_bytes(raw)


def private_to_pem(key: Ed25519PrivateKey) -> bytes:
    """Return the private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_pem(data: bytes) -> Ed25519PrivateKey:
    """Return the Ed25519 private key in unencrypted PEM `data`.

    Raises ValueError if `data` is not PEM, is encrypted, or holds another key type.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # cryptography's way of saying "encrypted"
        raise ValueError(f"expected an unencrypted Ed25519 private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"expected an Ed25519 private key, got {type(key).__name__}")
    return key


def public_to_pem(key_or_raw: Ed25519PrivateKey | Ed25519PublicKey | bytes) -> bytes:
    """Return the public key as SubjectPublicKeyInfo PEM."""
    if isinstance(key_or_raw, bytes):
        public = load_public_raw(key_or_raw)
    elif isinstance(key_or_raw, Ed25519PrivateKey):
        public = key_or_raw.public_key()
    else:
        public = key_or_raw
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_pem(data: bytes) -> bytes:
    """Return the 32 raw bytes of the Ed25519 public key in PEM `data`.

    Raises ValueError if `data` is not PEM or holds another key type.
    """
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"expected an Ed25519 public key, got {type(key).__name__}")
    return public_raw(key)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def kid_for(public: bytes) -> str:
    """Return the RFC 7638 thumbprint (SHA-256, base64url without padding) of
    the OKP/Ed25519 JWK of the raw public key."""
    load_public_raw(public)  # refuse anything that is not a 32-byte key
    required = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(public)}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(public: bytes, kid: str | None = None) -> dict[str, str]:
    """Return the public JWK of the raw key; `kid` defaults to its thumbprint."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(public),
        "kid": kid if kid is not None else kid_for(public),
        "alg": ALGORITHM,
        "use": "sig",
    }


def jwks(keys: Iterable[tuple[bytes, str]]) -> dict[str, Any]:
    """Return a JWK Set of (raw public key, kid) pairs, in the given order."""
    return {"keys": [public_jwk(public, kid) for public, kid in keys]}


def jwks_public_keys(document: object) -> list[bytes]:
    """Return the raw public keys of a JWK Set of Ed25519 keys (what ``jwks`` writes).

    Raises ValueError naming the first key that is not an OKP/Ed25519 public
    JWK with a base64url ``x`` of 32 bytes, or if the set holds no key.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWK Set: expected {"keys": [...]}')
    found: list[bytes] = []
    for index, jwk in enumerate(document["keys"]):
        x = jwk.get("x") if isinstance(jwk, dict) else None
        if not isinstance(jwk, dict) or (jwk.get("kty"), jwk.get("crv")) != ("OKP", "Ed25519"):
            raise ValueError(f"keys[{index}] is not an Ed25519 public key (kty OKP, crv Ed25519)")
        try:
            raw = base64.urlsafe_b64decode(str(x) + "=" * (-len(str(x)) % 4))
            load_public_raw(raw)
        except ValueError:
            raise ValueError(f"keys[{index}]: x is not a 32-byte base64url key") from None
        found.append(raw)
    if not found:
        raise ValueError("the JWK Set holds no key")
    return found


@dataclass(frozen=True)
class KeyRecord:
    """One registered signing key of an agency."""

    agency: str
    kid: str
    public: bytes
    revoked: bool


class KeyLookup(Protocol):
    """Where signature checks find agencies and their keys."""

    def key(self, agency: str, kid: str) -> KeyRecord | None:
        """Return the agency's key with this id, revoked or not; None if unknown."""
        ...

    def agency_exists(self, agency: str) -> bool:
        """Return whether `agency` is a registered principal."""
        ...


class StaticKeys:
    """A KeyLookup over a fixed mapping of agency id to its key records.

    An agency mapped to no records exists but has no keys. Raises ValueError
    if a record is filed under an agency other than its own.
    """

    def __init__(self, keys: Mapping[str, Iterable[KeyRecord]]) -> None:
        self._keys: dict[str, dict[str, KeyRecord]] = {}
        for agency, records in keys.items():
            by_kid: dict[str, KeyRecord] = {}
            for record in records:
                if record.agency != agency:
                    raise ValueError(f"key {record.kid} of {record.agency} filed under {agency}")
                by_kid[record.kid] = record
            self._keys[agency] = by_kid

    def key(self, agency: str, kid: str) -> KeyRecord | None:
        """Return the agency's key with this id, revoked or not; None if unknown."""
        return self._keys.get(agency, {}).get(kid)

    def agency_exists(self, agency: str) -> bool:
        """Return whether `agency` is in the mapping."""
        return agency in self._keys


K = TypeVar("K")
V = TypeVar("V")


class CachedKeys:
    """A KeyLookup that remembers another's answers for ``ttl_seconds``.

    Token and signature checks then cost no database read per message; a key
    added or revoked is seen within ``ttl_seconds``. At most ``size`` answers
    of each kind are kept (the least recently used go first): issuers and key
    ids come from callers, who must not be able to grow the cache at will.
    """

    def __init__(
        self,
        source: KeyLookup,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        size: int = 1024,
    ) -> None:
        self._source = source
        self._ttl = ttl_seconds
        self._clock = clock
        self._size = size
        self._lock = threading.Lock()
        self._keys: OrderedDict[tuple[str, str], tuple[float, KeyRecord | None]] = OrderedDict()
        self._agencies: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    def key(self, agency: str, kid: str) -> KeyRecord | None:
        return self._cached(self._keys, (agency, kid), lambda: self._source.key(agency, kid))

    def agency_exists(self, agency: str) -> bool:
        return self._cached(self._agencies, agency, lambda: self._source.agency_exists(agency))

    def _cached(self, cache: OrderedDict[K, tuple[float, V]], name: K, load: Callable[[], V]) -> V:
        now = self._clock()
        with self._lock:
            cached = cache.get(name)
            if cached is not None and now - cached[0] <= self._ttl:
                cache.move_to_end(name)
                return cached[1]
        value = load()
        with self._lock:
            cache[name] = (now, value)
            cache.move_to_end(name)
            while len(cache) > self._size:
                cache.popitem(last=False)
        return value
