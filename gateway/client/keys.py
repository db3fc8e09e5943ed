"""The gateway's public keys on the agency's side: what every delivery's
signature is checked against (``gateway.client.inbox``).

They come from the JWKS file of the ``gateway_jwks`` setting or the
``--gateway-jwks`` option (``silian keys gateway`` prints one), else — on the
gateway's own machine: the demo, the tests — from the public half of the gateway
key in the data directory. With neither, the inbox cannot be read. (The
agency's own private key files: ``gateway.security.keyfiles``.)
"""

from __future__ import annotations

import json
from pathlib import Path

from gateway.config import Settings
from gateway.security import keys as keyring


def load_gateway_jwks(path: Path) -> tuple[bytes, ...]:
    """The raw public keys in the JWKS file ``path``; ValueError naming the file
    and the problem when it is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return tuple(keyring.jwks_public_keys(document))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"gateway JWKS {path}: {err}") from None


def gateway_keys(settings: Settings, jwks: Path | None = None) -> tuple[bytes, ...]:
    """The gateway's public keys deliveries are checked against: ``jwks`` (a
    command-line option), else the ``gateway_jwks`` setting, else the gateway key
    in the data directory; empty (the inbox reader then refuses to open) when
    there is none of them."""
    if jwks is None and settings.gateway_jwks:
        jwks = Path(settings.gateway_jwks)
    if jwks is not None:
        return load_gateway_jwks(jwks)
    if settings.gateway_key_file.exists():
        gateway_key = keyring.load_private_pem(settings.gateway_key_file.read_bytes())
        return (keyring.public_raw(gateway_key),)
    return ()
