"""Compact JWS (RFC 7515) with EdDSA, done directly on the `cryptography` keys.

Signing and verifying a message is the gateway's hot path: a generic JWT
library re-parses options, algorithms and keys on every call, which cost
more than the Ed25519 operation itself. This module does only what a compact
EdDSA JWS needs; PyJWT stays for bearer tokens and in the tests, which check
that the two agree.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


class MalformedJws(ValueError):
    """The text is not a compact JWS with JSON-object header and claims."""


@dataclass(frozen=True)
class Parsed:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64decode(part: str, what: str) -> bytes:
    try:
        return base64.b64decode(part + "=" * (-len(part) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedJws(f"the {what} is not base64url") from exc


@functools.lru_cache(maxsize=256)
def _header(kid: str) -> bytes:
    return _b64encode(_JSON.encode({"alg": ALGORITHM, "kid": kid, "typ": "JWT"}).encode())


def sign(key: Ed25519PrivateKey, kid: str, claims: dict[str, Any]) -> str:
    """The compact JWS over `claims`, header alg EdDSA and `kid`."""
    signing_input = _header(kid) + b"." + _b64encode(_JSON.encode(claims).encode())
    return (signing_input + b"." + _b64encode(key.sign(signing_input))).decode("ascii")


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part, what))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedJws(f"the {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise MalformedJws(f"the {what} is not a JSON object")
    return value


def parse(token: str) -> Parsed:
    """Header, claims and signature of `token`, NOT verified; MalformedJws if
    it is not three base64url parts with JSON-object header and claims."""
    if not isinstance(token, str) or not token.isascii():
        raise MalformedJws("not ASCII text")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedJws("not three dot-separated parts")
    header, claims, signature = parts
    return Parsed(
        header=_json_object(header, "header"),
        claims=_json_object(claims, "claims"),
        signing_input=f"{header}.{claims}".encode("ascii"),
        signature=_b64decode(signature, "signature"),
    )


def verifies(parsed: Parsed, public: Ed25519PublicKey) -> bool:
    """Whether `parsed` is an EdDSA JWS made by the key whose public half is `public`."""
    if parsed.header.get("alg") != ALGORITHM:
        return False
    try:
        public.verify(parsed.signature, parsed.signing_input)
    except InvalidSignature:
        return False
    return True
