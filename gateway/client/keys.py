"""The keys an agency's front-end processor (前置机) works with.

- **Its own private key**, which signs its messages and bearer tokens: ``--key
  FILE``, or the newest one kept under ``<data-dir>/agency-keys/<agency>/``
  (``<kid>.pem``, mode 0600), where ``silian agency add --generate-key`` writes it.
- **The gateway's public keys**, which every delivery's signature is checked
  against: the JWKS file of the ``gateway_jwks`` setting (``silian keys gateway``
  prints one), else — on the gateway's own machine: the demo, the tests — the
  public half of the gateway key in the data directory. With neither, deliveries
  are not checked.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.config import Settings
from gateway.security import keys as keyring


def agency_key_dir(settings: Settings, agency: str) -> Path:
    """Where the private keys generated for ``agency`` are kept."""
    return settings.data_dir / "agency-keys" / agency


def write_new_key(settings: Settings, agency: str) -> tuple[Ed25519PrivateKey, str, Path]:
    """Generate a key pair for ``agency`` and keep the private half on disk (0600);
    returns the key, its kid and the file."""
    key = keyring.generate_private_key()
    kid = keyring.kid_for(keyring.public_raw(key))
    path = agency_key_dir(settings, agency) / f"{kid}.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(keyring.private_to_pem(key))
    return key, kid, path


def load_agency_key(settings: Settings, agency: str, path: Path | None = None) -> Ed25519PrivateKey:
    """The private key at ``path``, or the newest one kept for ``agency``;
    ValueError when there is none."""
    if path is None:
        candidates = sorted(
            agency_key_dir(settings, agency).glob("*.pem"), key=lambda p: p.stat().st_mtime
        )
        if not candidates:
            raise ValueError(
                f"no private key for {agency!r} under "
                f"{agency_key_dir(settings, agency)}; pass --key FILE"
            )
        path = candidates[-1]
    return keyring.load_private_pem(path.read_bytes())


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
    in the data directory; empty (no check) when there is none of them."""
    if jwks is None and settings.gateway_jwks:
        jwks = Path(settings.gateway_jwks)
    if jwks is not None:
        return load_gateway_jwks(jwks)
    if settings.gateway_key_file.exists():
        gateway_key = keyring.load_private_pem(settings.gateway_key_file.read_bytes())
        return (keyring.public_raw(gateway_key),)
    return ()
