"""The private key files an operator generates for agencies
(``silian agency add --generate-key``): ``<data-dir>/agency-keys/<agency>/<kid>.pem``,
mode 0600. The gateway registers their public halves; an agency's front-end
processor signs with the newest one kept for it (or the one ``--key`` names).
"""

from __future__ import annotations

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
