"""An accepted message with everything that must be stored with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class NewOutboxRow:
    """One delivery to store with its message: a recipient's signed view
    (``destination`` "inbox", ``routing_key`` = the recipient) or the bureau
    feed's copy ("feed", ``<kind>.<unit>.<sender>``)."""

    destination: str
    recipient: str
    routing_key: str
    policy_id: str
    view_sha256: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NewMessage:
    """An accepted message with everything that must commit with it."""

    sender: str
    mid: str
    kind: str
    payload: bytes
    payload_sha256: str
    signature: str
    unit_code: str
    accepted_at: datetime
    outbox: Sequence[NewOutboxRow]
    pseudonyms: Sequence[tuple[str, str, str]]  # (recipient, pseudonym, resident_id)
    referred: Sequence[tuple[str, str]]  # (recipient, pseudonym)
    ended: Sequence[tuple[str, str]] = ()  # referrals this message ends
    served: Sequence[tuple[str, str]] = ()  # referrals a partner's record keeps alive
    subject_keys: Sequence[str] = ()  # keyed hashes of the people the message names
