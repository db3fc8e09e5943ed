"""Per-recipient pseudonyms (DESIGN §2): a recipient that may not see identity
gets a keyed HMAC of the resident ID number instead, under a key of its own,
so two recipients cannot link their records to each other or to the ID."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

MIN_KEY_BYTES = 16


def new_pseudonym_key() -> bytes:
    """Return a fresh random 32-byte pseudonym key."""
    return secrets.token_bytes(32)


def pseudonym(key: bytes, resident_id: str) -> str:
    """Return "P-" and the first 20 base32 characters of HMAC-SHA256(key,
    upper-cased ID): stable for one key, unrelated across keys.

    Raises ValueError if the key is shorter than MIN_KEY_BYTES.
    """
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a pseudonym key needs at least {MIN_KEY_BYTES} bytes")
    digest = hmac.digest(key, resident_id.upper().encode("utf-8"), hashlib.sha256)
    # 20 base32 characters encode the first 12.5 bytes; 15 bytes make 24.
    return "P-" + base64.b32encode(digest[:15]).decode("ascii")[:20]
