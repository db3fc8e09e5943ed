"""What the load and the consumer processes share: their keys, bearer tokens,
channel options, and leaving Ctrl-C to the parent."""

from __future__ import annotations

import signal
import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.security import issue_token, kid_for, load_private_pem, public_raw

#: gRPC options of the workers' channels.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
#: A channel with a connection of its own (grpc shares one between channels to
#: one target otherwise; SO_REUSEPORT spreads connections over workers, not calls).
SPREAD_OPTIONS = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]


class Tokens:
    """Bearer-token metadata per agency, renewed a minute before expiry."""

    TTL = 300

    def __init__(self, keys: dict[str, Ed25519PrivateKey], audience: str) -> None:
        self._keys = keys
        self._audience = audience
        self._cache: dict[str, tuple[float, list[tuple[str, str]]]] = {}
        self._lock = threading.Lock()

    def metadata(self, agency: str) -> list[tuple[str, str]]:
        with self._lock:
            expires, metadata = self._cache.get(agency, (0.0, []))
            if time.time() > expires - 60:
                key = self._keys[agency]
                token = issue_token(
                    key,
                    kid_for(public_raw(key)),
                    issuer=agency,
                    audience=self._audience,
                    ttl_seconds=self.TTL,
                )
                metadata = [("authorization", f"Bearer {token}")]
                self._cache[agency] = (time.time() + self.TTL, metadata)
            return metadata


def load_keys(pems: dict[str, bytes]) -> dict[str, Ed25519PrivateKey]:
    """The agencies' private keys from their PEM (as the harness passes them on)."""
    return {agency: load_private_pem(pem) for agency, pem in pems.items()}


def quiet_child() -> None:
    """Worker processes leave Ctrl-C to the parent, which stops them in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
