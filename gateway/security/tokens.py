"""Per-call bearer tokens (DESIGN §3 step 2): short-lived EdDSA JWTs that an
agency signs with one of its registered keys, `aud` = the gateway.

PyJWT parses tokens and checks signature and audience; the time claims are
checked here against an explicit clock, which PyJWT cannot take."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.types import Options

from gateway.domain.errors import Unauthenticated
from gateway.security.keys import ALGORITHM, KeyLookup, KeyRecord, load_public_raw

# The reason for each PyJWT error; the most specific class listed wins.
_PYJWT_REASONS: dict[type[jwt.PyJWTError], str] = {
    jwt.InvalidSignatureError: "BAD_TOKEN_SIGNATURE",
    jwt.InvalidAudienceError: "WRONG_AUDIENCE",
    jwt.PyJWTError: "MALFORMED_TOKEN",
}

#: Longest bearer token, issuer (an agency id) and key id the gateway reads:
#: anything longer is refused before it reaches a key look-up or a cache.
MAX_TOKEN_CHARS = 4096
MAX_ISSUER_CHARS = 64
MAX_KID_CHARS = 128

# Signature, audience and claim types; time claims are checked in _check_times.
_CHECKED: Options = {
    "verify_signature": True,
    "require": ["aud"],
    "verify_aud": True,
    "strict_aud": False,
    "verify_sub": True,
    "verify_jti": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_iss": False,
}


@dataclass(frozen=True)
class TokenClaims:
    """Who a verified token speaks for: the issuing agency, the key it used,
    when the token expires (epoch seconds), and its subject (defaults to the issuer)."""

    issuer: str
    kid: str
    expires_at: int
    subject: str


def issue_token(
    key: Ed25519PrivateKey,
    kid: str,
    *,
    issuer: str,
    audience: str,
    ttl_seconds: int = 300,
    now: float | None = None,
    subject: str | None = None,
) -> str:
    """Return a JWT (header kid) with claims iss, sub (default: the issuer),
    aud, iat, exp = iat + ttl_seconds and a fresh jti."""
    issued_at = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "sub": issuer if subject is None else subject,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})


def _pyjwt_reason(error: type[jwt.PyJWTError]) -> str:
    """Return the reason reported for a PyJWT error class."""
    return next(_PYJWT_REASONS[c] for c in error.__mro__ if c in _PYJWT_REASONS)


@contextmanager
def _pyjwt_errors() -> Iterator[None]:
    """Turn any PyJWT error raised inside into Unauthenticated."""
    try:
        yield
    except jwt.PyJWTError as exc:
        raise Unauthenticated(_pyjwt_reason(type(exc)), f"bearer token refused: {exc}") from exc


def _malformed(problem: str) -> Unauthenticated:
    return Unauthenticated("MALFORMED_TOKEN", f"bearer token refused: {problem}")


def _check_shape(header: dict[str, Any], claims: dict[str, Any]) -> None:
    if header.get("alg") != ALGORITHM:
        raise _malformed(f"alg must be {ALGORITHM}, not {str(header.get('alg'))[:20]!r}")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise _malformed("the header has no kid")
    if len(header["kid"]) > MAX_KID_CHARS:
        raise _malformed(f"the kid is longer than {MAX_KID_CHARS} characters")
    if not isinstance(claims.get("iss"), str) or not claims["iss"]:
        raise _malformed("no iss claim")
    if len(claims["iss"]) > MAX_ISSUER_CHARS:
        raise _malformed(f"the iss claim is longer than {MAX_ISSUER_CHARS} characters")
    if "iat" not in claims or "exp" not in claims:
        raise _malformed("claims iat and exp are required")
    # type() rather than isinstance(): bool is an int subclass and is refused
    not_ints = [n for n in ("iat", "exp", "nbf") if n in claims and type(claims[n]) is not int]
    if not_ints:
        raise _malformed(f"claims {', '.join(not_ints)} must be integers (seconds)")


def _active_key(keys: KeyLookup, agency: str, kid: str) -> KeyRecord:
    if not keys.agency_exists(agency):
        raise Unauthenticated("UNKNOWN_AGENCY", f"{agency!r} is not a registered agency")
    record = keys.key(agency, kid)
    if record is None:
        raise Unauthenticated("UNKNOWN_KEY", f"{agency} has no key {kid!r}")
    if record.revoked:
        raise Unauthenticated("REVOKED_KEY", f"key {kid!r} of {agency} is revoked")
    return record


def _check_times(claims: dict[str, Any], now: float, leeway: int, max_lifetime: int) -> None:
    iat, exp = claims["iat"], claims["exp"]
    if exp <= now - leeway:
        raise Unauthenticated("EXPIRED_TOKEN", f"the token expired at {exp}")
    # A token issued ahead of the clock is "not yet valid" whatever its exp.
    start = max(iat, claims.get("nbf", iat))
    if start > now + leeway:
        raise Unauthenticated(
            "TOKEN_NOT_YET_VALID",
            f"the token is valid from {start}, more than {leeway}s ahead of the gateway's clock",
        )
    if exp - iat > max_lifetime:
        raise Unauthenticated("TOKEN_LIFETIME_TOO_LONG", f"tokens may live at most {max_lifetime}s")


class VerifiedTokens:
    """Tokens whose signature and audience already verified, with their header
    and claims: a client sends the same token on every call of its few minutes
    of life, and the signature check is the cost of a call. Whether the key is
    still active, and the token's times, are checked on every call regardless.
    Holds at most ``size`` tokens (the oldest go first)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def get(self, token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        return self._tokens.get(token)

    def put(self, token: str, header: dict[str, Any], claims: dict[str, Any]) -> None:
        with self._lock:
            self._tokens[token] = (header, claims)
            while len(self._tokens) > self._size:
                del self._tokens[next(iter(self._tokens))]


def verify_token(
    token: str | None,
    keys: KeyLookup,
    *,
    audience: str,
    leeway_seconds: int,
    max_lifetime_seconds: int = 600,
    now: float | None = None,
    verified: VerifiedTokens | None = None,
) -> TokenClaims:
    """Return who `token` speaks for, or raise Unauthenticated with its reason.

    Checks run in this order: MISSING_TOKEN (None or empty); MALFORMED_TOKEN
    (not a JWT, alg not EdDSA, no kid, no iss, iat/exp/nbf not integers);
    UNKNOWN_AGENCY (iss); UNKNOWN_KEY (kid); REVOKED_KEY; BAD_TOKEN_SIGNATURE;
    then, of the signed claims, MALFORMED_TOKEN (no aud, sub or jti not a
    string); WRONG_AUDIENCE (aud does not name `audience`); EXPIRED_TOKEN (exp at or
    before now - leeway); TOKEN_LIFETIME_TOO_LONG (exp - iat > max lifetime,
    or exp beyond now + max lifetime + leeway); TOKEN_NOT_YET_VALID (iat or
    nbf beyond now + leeway). `now` defaults to the system clock.
    """
    if not token:
        raise Unauthenticated("MISSING_TOKEN", "the call carries no bearer token")
    if len(token) > MAX_TOKEN_CHARS:
        raise _malformed(f"the token is longer than {MAX_TOKEN_CHARS} characters")
    known = verified.get(token) if verified is not None else None
    if known is None:
        with _pyjwt_errors():
            unverified = jwt.decode_complete(token, options={"verify_signature": False})
        header, claims = unverified["header"], unverified["payload"]
        _check_shape(header, claims)
    else:
        header, claims = known
    record = _active_key(keys, claims["iss"], header["kid"])
    if known is None:
        with _pyjwt_errors():
            jwt.decode(
                token,
                load_public_raw(record.public),
                algorithms=[ALGORITHM],
                audience=audience,
                options=_CHECKED,
            )
        if verified is not None:
            verified.put(token, header, claims)
    _check_times(claims, time.time() if now is None else now, leeway_seconds, max_lifetime_seconds)
    return TokenClaims(
        issuer=claims["iss"],
        kid=header["kid"],
        expires_at=claims["exp"],
        subject=claims.get("sub", claims["iss"]),
    )


def bearer_from_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """Return the token of the first `authorization` entry if it reads
    `Bearer <token>` (scheme in any case); None otherwise."""
    for name, value in metadata:
        if name.lower() != "authorization":
            continue
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        parts = text.split(None, 1)
        return parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else None
    return None
