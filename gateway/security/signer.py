"""The gateway's own Ed25519 identity: it signs receipts and deliveries."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.security import jws, keys


@dataclass(frozen=True)
class GatewaySigner:
    gateway_id: str
    private_key: Ed25519PrivateKey
    kid: str

    @classmethod
    def from_key(cls, gateway_id: str, private_key: Ed25519PrivateKey) -> GatewaySigner:
        return cls(gateway_id, private_key, keys.kid_for(keys.public_raw(private_key)))

    @property
    def public(self) -> bytes:
        return keys.public_raw(self.private_key)

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS over ``claims`` with ``iss`` set to the gateway id."""
        return jws.sign_gateway(self.private_key, self.kid, {"iss": self.gateway_id, **claims})

    def sign_message(self, *, mid: str, kind: str, iss: str, payload: bytes) -> str:
        """A message signature (DESIGN §7) by the gateway key, for alerts it raises."""
        return jws.sign_message(
            self.private_key, self.kid, mid=mid, kind=kind, iss=iss, payload=payload
        )

    def jwks(self) -> dict[str, Any]:
        return keys.jwks([(self.public, self.kid)])


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The PEM private key at ``path``, created (mode 0600) when missing."""
    if not path.exists():
        _create_once(path, keys.private_to_pem(keys.generate_private_key()))
    return keys.load_private_pem(path.read_bytes())


def load_or_create_secret(path: Path) -> bytes:
    """A 32-byte secret (hex in the file at ``path``), created (mode 0600) when missing."""
    if not path.exists():
        from gateway.security.pseudonyms import new_pseudonym_key

        _create_once(path, (new_pseudonym_key().hex() + "\n").encode())
    return bytes.fromhex(path.read_text().strip())


def _create_once(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` (mode 0600) unless another process created
    it first: written whole to a file of its own, then linked into place, so
    gateways starting together on one data directory all use one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.link(draft, path)
    except FileExistsError:
        pass  # another process's key is the key
    finally:
        draft.unlink(missing_ok=True)
