"""Registering principals and their keys (each change audited in its
transaction), and keeping the private keys an operator generated for them
(``<data-dir>/agency-keys/<agency>/<kid>.pem``, mode 0600)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit import log as audit_log
from gateway.config import Settings
from gateway.domain import events
from gateway.domain.events import AuditEvent
from gateway.domain.policy import Policy
from gateway.security import keys as keyring
from gateway.store.repository import Store


def add_agency(store: Store, agency_id: str, display_name: str, role: str, actor: str) -> None:
    """Register a principal; Conflict if the id is taken."""
    with store.transaction() as session:
        store.insert_agency(session, agency_id, display_name, role)
        detail = {"agency": agency_id, "role": role}
        audit_log.append(session, [AuditEvent(events.AGENCY_ADDED, actor, detail=detail)])


def add_key(store: Store, agency_id: str, kid: str, public: bytes, actor: str) -> None:
    """Add an active key; NotFound for an unknown agency, Conflict for a known kid."""
    with store.transaction() as session:
        store.insert_key(session, agency_id, kid, public)
        detail = {"agency": agency_id, "kid": kid}
        audit_log.append(session, [AuditEvent(events.KEY_ADDED, actor, detail=detail)])


def revoke_key(store: Store, agency_id: str, kid: str, actor: str) -> None:
    """Revoke a key from now on; NotFound if the agency has no such key."""
    with store.transaction() as session:
        store.set_key_revoked(session, agency_id, kid)
        detail = {"agency": agency_id, "kid": kid}
        audit_log.append(session, [AuditEvent(events.KEY_REVOKED, actor, detail=detail)])


def agency_key_dir(settings: Settings, agency: str) -> Path:
    return settings.data_dir / "agency-keys" / agency


def write_new_key(settings: Settings, agency: str) -> tuple[Ed25519PrivateKey, str, Path]:
    """Generate a key pair for ``agency`` and keep the private half on disk."""
    key = keyring.generate_private_key()
    kid = keyring.kid_for(keyring.public_raw(key))
    path = agency_key_dir(settings, agency) / f"{kid}.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(keyring.private_to_pem(key))
    return key, kid, path


def load_agency_key(settings: Settings, agency: str, path: Path | None = None) -> Ed25519PrivateKey:
    """The private key at ``path``, or the newest one kept for ``agency``."""
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


def ensure_principals(
    settings: Settings, store: Store, policy: Policy
) -> dict[str, Ed25519PrivateKey]:
    """Register every agency and auditor of the policy that is not registered yet,
    with a generated key; returns each one's usable private key."""
    result: dict[str, Ed25519PrivateKey] = {}
    for principal in policy.principals():
        if principal.role not in ("agency", "auditor"):
            continue
        active = {k.kid for k in store.keys_of(principal.id) if k.revoked_at is None}
        kept = {p.stem for p in agency_key_dir(settings, principal.id).glob("*.pem")}
        usable = sorted(active & kept)
        if usable:
            path = agency_key_dir(settings, principal.id) / f"{usable[-1]}.pem"
            result[principal.id] = keyring.load_private_pem(path.read_bytes())
            continue
        if store.agency(principal.id) is None:
            add_agency(store, principal.id, principal.display_name, principal.role, "operator")
        key, kid, _ = write_new_key(settings, principal.id)
        add_key(store, principal.id, kid, keyring.public_raw(key), "operator")
        result[principal.id] = key
    return result
