"""Which columns hold personal data, sealed with the data key
(``gateway.security.atrest``), and the row identity each is bound to.

Sealed: ``messages.payload``, ``outbox.body``, ``subject_pseudonyms.sealed_resident_id``
and ``linkage_state.sealed_value``. The row identity (associated data) is the
table and its natural key, so a value moved to another row does not open.
A session of the store carries the data keys in ``session.info``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from gateway.security.atrest import DataKeys

INFO_KEY = "data_keys"


def keys_of(session: Session) -> DataKeys:
    """The data keys of the store ``session`` belongs to."""
    keys = session.info.get(INFO_KEY)
    if not isinstance(keys, DataKeys):
        raise RuntimeError("this session was not opened by a Store: it has no data keys")
    return keys


def message_row(sender: str, mid: str) -> str:
    return f"messages/{sender}/{mid}"


def outbox_row(sender: str, mid: str, destination: str, recipient: str) -> str:
    return f"outbox/{sender}/{mid}/{destination}/{recipient}"


def pseudonym_row(recipient: str, pseudonym: str) -> str:
    return f"subject_pseudonyms/{recipient}/{pseudonym}"


def state_row(linkage: str, key: str) -> str:
    return f"linkage_state/{linkage}/{key}"


def seal_state(keys: DataKeys, linkage: str, key: str, value: dict[str, Any]) -> bytes:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return keys.seal_text(text, state_row(linkage, key))


def open_state(keys: DataKeys, linkage: str, key: str, sealed: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(keys.open_text(sealed, state_row(linkage, key)))
    return value
