"""Registering principals and their keys (each change audited in its
transaction), with keys generated for them where none is kept (the private key
files: ``gateway.security.keyfiles``)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit import log as audit_log
from gateway.config import Settings
from gateway.domain import events
from gateway.domain.events import AuditEvent
from gateway.domain.policy import Policy
from gateway.security import keys as keyring
from gateway.security.keyfiles import agency_key_dir, write_new_key
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
