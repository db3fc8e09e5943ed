"""Per-recipient pseudonyms (DESIGN §2): a recipient that may not see identity
gets a keyed HMAC of the resident ID number instead, under a key of its own,
so two recipients cannot link their records to each other or to the ID."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

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


def delivery_mid(key: bytes, sender: str, mid: str) -> str:
    """The id under which a recipient of a minimized view knows message ``mid``
    of ``sender``: a UUID (version 8) made of HMAC-SHA256 under the recipient's
    key — stable for that recipient (redeliveries deduplicate), unrelated to
    the mid and to every other recipient's id of the same message."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a pseudonym key needs at least {MIN_KEY_BYTES} bytes")
    message = b"delivery\x00" + sender.encode("utf-8") + b"\x00" + mid.encode("utf-8")
    raw = bytearray(hmac.new(key, message, hashlib.sha256).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8: custom
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(raw)))
