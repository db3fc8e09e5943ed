"""Personal data at rest: AES-256-GCM under the gateway's data key.

The data keys live in ``<data-dir>/keys/data/``: one file of 32 random bytes
per key (``<kid>.key``, mode 0600) and ``current`` naming the key new data is
sealed with. A sealed value is ``0x01 | kid (8 ASCII hex) | nonce (12) |
ciphertext+tag``; the associated data is the row's identity (table and primary
key), so a sealed value copied to another row does not open. Keys are loaded
once (one ``AESGCM`` object per key, no per-row derivation); ``current`` is
re-read at most every ``refresh_seconds`` so a rotation made by another
process (``silian keys rotate-data-key``) is picked up while running, and a
key not yet loaded is read on first use.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.security.files import write_private

VERSION = b"\x01"
_KID_BYTES = 8
_NONCE_BYTES = 12
_HEADER = len(VERSION) + _KID_BYTES + _NONCE_BYTES
CURRENT = "current"


class SealedDataError(ValueError):
    """A sealed value cannot be opened: unknown key, wrong row, or tampered."""


class DataKeys:
    """Seals and opens personal data with the data keys of one directory
    (or, from ``ephemeral``, with a key that lives only in memory)."""

    def __init__(self, directory: Path | None, refresh_seconds: float = 2.0) -> None:
        self.directory = directory
        self.refresh_seconds = refresh_seconds
        self._ciphers: dict[str, AESGCM] = {}
        self._current = ""
        self._checked = 0.0
        self._lock = threading.Lock()

    @classmethod
    def load_or_create(cls, directory: Path) -> DataKeys:
        """The keys of ``directory``, making the first one (0600) if there is none."""
        keys = cls(directory)
        if not (directory / CURRENT).exists():
            keys.rotate()
        keys._refresh(force=True)
        return keys

    @classmethod
    def ephemeral(cls) -> DataKeys:
        """A key held in memory only (tests, benchmarks): lost with the process."""
        keys = cls(None)
        kid = secrets.token_hex(_KID_BYTES // 2)
        keys._ciphers[kid] = AESGCM(AESGCM.generate_key(bit_length=256))
        keys._current = kid
        return keys

    @property
    def current(self) -> str:
        """The id of the key new data is sealed with."""
        self._refresh()
        return self._current

    def rotate(self) -> str:
        """Make a new key and make it current; returns its id. Earlier keys
        stay, so data sealed with them still opens until re-sealed."""
        if self.directory is None:
            raise ValueError("an ephemeral key cannot be rotated")
        kid = secrets.token_hex(_KID_BYTES // 2)
        write_private(self.directory / f"{kid}.key", AESGCM.generate_key(bit_length=256))
        write_private(self.directory / CURRENT, kid.encode())
        self._refresh(force=True)
        return kid

    def seal(self, plaintext: bytes, row: str) -> bytes:
        """``plaintext`` encrypted under the current key, bound to ``row``."""
        kid = self.current
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher(kid).encrypt(nonce, plaintext, row.encode())
        return VERSION + kid.encode() + nonce + sealed

    def open(self, sealed: bytes, row: str) -> bytes:
        """The plaintext of ``sealed`` (made by ``seal`` for ``row``); raises
        SealedDataError if it was sealed for another row, altered, or under a
        key this directory does not hold."""
        if len(sealed) < _HEADER or sealed[:1] != VERSION:
            raise SealedDataError(f"{row}: not a sealed value")
        kid = sealed[1 : 1 + _KID_BYTES].decode("ascii", "replace")
        nonce = sealed[1 + _KID_BYTES : _HEADER]
        try:
            return self._cipher(kid).decrypt(nonce, sealed[_HEADER:], row.encode())
        except InvalidTag:
            raise SealedDataError(f"{row}: does not open with data key {kid}") from None

    def seal_text(self, text: str, row: str) -> bytes:
        return self.seal(text.encode("utf-8"), row)

    def open_text(self, sealed: bytes, row: str) -> str:
        return self.open(sealed, row).decode("utf-8")

    @staticmethod
    def key_of(sealed: bytes) -> str:
        """The id of the key ``sealed`` was sealed with."""
        return sealed[1 : 1 + _KID_BYTES].decode("ascii", "replace")

    def _cipher(self, kid: str) -> AESGCM:
        cipher = self._ciphers.get(kid)
        if cipher is None:
            cipher = self._load(kid)
        return cipher

    def _load(self, kid: str) -> AESGCM:
        path = self.directory / f"{kid}.key" if self.directory else None
        if path is None or not kid.isalnum() or not path.exists():
            raise SealedDataError(
                f"data key {kid!r} is missing from {self.directory}: restore keys/data/ "
                "from the backup kept with the database (without it the data cannot be read)"
            )
        raw = path.read_bytes()
        if len(raw) != 32:
            raise SealedDataError(f"{path} is not a 256-bit key")
        with self._lock:
            self._ciphers[kid] = AESGCM(raw)
        return self._ciphers[kid]

    def _refresh(self, force: bool = False) -> None:
        if self.directory is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_seconds:
            return
        self._checked = now
        kid = (self.directory / CURRENT).read_text(encoding="ascii").strip()
        if kid != self._current:
            self._cipher(kid)
            self._current = kid
