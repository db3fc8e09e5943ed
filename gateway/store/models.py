"""Tables of the gateway (SQLAlchemy 2 typed ORM). Alembic migrations in
``migrations/`` create them; the models are the single description."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Agency(Base):
    """A principal that calls the gateway (agency or auditor)."""

    __tablename__ = "agencies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AgencyKey(Base):
    """An Ed25519 public key of an agency; several may be active (rotation)."""

    __tablename__ = "agency_keys"

    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StoredMessage(Base):
    """An accepted message exactly as the sender signed it, with its receipt.
    ``payload`` is sealed (``gateway.store.sealed``); the rest is routing
    metadata and digests."""

    __tablename__ = "messages"

    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    mid: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    unit_code: Mapped[str] = mapped_column(String(16), default="")
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    audit_index: Mapped[int] = mapped_column(BigInteger)
    receipt: Mapped[bytes] = mapped_column(LargeBinary)


class OutboxRow(Base):
    """One delivery to publish: a recipient's signed view, or a feed copy
    (``body``, sealed).

    ``published_at`` is set only after the broker confirmed the publish; the
    later timestamps track the recipient's side.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "published_at", "id"),
        Index("ix_outbox_message", "sender", "mid"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    sender: Mapped[str] = mapped_column(String(64))
    mid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    destination: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(64), default="")
    routing_key: Mapped[str] = mapped_column(String(255))
    policy_id: Mapped[str] = mapped_column(String(128), default="")
    view_sha256: Mapped[str] = mapped_column(String(64), default="")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unroutable_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Rounds of the relay that read this row to publish it; above 1, an
    #: earlier publish may have reached the broker (a crash between its
    #: confirm and ``published_at``), so the copy is marked redelivered.
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SubjectPseudonym(Base):
    """Which pseudonym a recipient knows a subject by (the resident ID
    sealed), and whether it was referred."""

    __tablename__ = "subject_pseudonyms"

    recipient: Mapped[str] = mapped_column(String(64), primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed_resident_id: Mapped[bytes] = mapped_column(LargeBinary)
    referred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: When the referral ended (closure, release, termination); None: it runs.
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The last service record of the recipient (a partner) naming the person.
    last_service_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MessageSubject(Base):
    """Which messages name which person, by a keyed hash of the resident ID
    (the subject key), so auditors can list who received a person's data."""

    __tablename__ = "message_subjects"

    subject_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    mid: Mapped[str] = mapped_column(String(64), primary_key=True)


class LinkageState(Base):
    """Small JSON documents a linkage keeps between messages (a finding's
    lifecycle, approved leave, last successful check), namespaced by linkage,
    so a new linkage needs no schema change. The document is sealed JSON; keys
    name people only by subject key (a keyed hash)."""

    __tablename__ = "linkage_state"

    linkage: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    sealed_value: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditHead(Base):
    """One row: the size of the audit log and its Merkle frontier (the hashes of
    the perfect subtrees that decompose it, largest first, concatenated).
    Updating it serializes appenders."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


class AuditEntry(Base):
    """An append-only audit log entry: canonical bytes and their RFC 9162 leaf hash."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_mid", "mid"),)

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    mid: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(64), default="")
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditNode(Base):
    """The hash of a perfect subtree of the audit Merkle tree, of leaves
    [index·2^level, (index+1)·2^level), level ≥ 1 (level 0 is
    ``AuditEntry.leaf_hash``). Keyed by ``node = level·2^48 + index`` so a proof
    fetches its O(log n) hashes with one indexed IN. Written with the entries
    that complete it, never changed."""

    __tablename__ = "audit_nodes"

    node: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)

    @staticmethod
    def key(level: int, index: int) -> int:
        """The ``node`` of the subtree at (level, index); a leaf's is its index."""
        return (level << 48) | index


class AuditCheckpoint(Base):
    """A signed checkpoint of the audit log (a C2SP signed note), as published."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text)


class Lease(Base):
    """A duty that must run on one replica at a time (the relay, the sweep,
    checkpoint signing). ``epoch`` rises each time another replica takes the
    lease over (a fencing token); ``expires_at`` is in the database's clock."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Replica(Base):
    """A gateway process sharing the database, as last seen (its heartbeat)."""

    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    listen: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertCaseRow(Base):
    """One alert's disposal lifecycle (``gateway.domain.disposal.AlertCase``):
    its state, deadlines, first verification and disposal, what was found and
    done, and the escalations already raised. Names people only by subject key."""

    __tablename__ = "alert_cases"
    __table_args__ = (
        Index("ix_alert_cases_unit_state", "unit_code", "state"),
        Index("ix_alert_cases_subject", "subject_key"),
    )

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mid: Mapped[str] = mapped_column(String(64))
    alert_type: Mapped[int] = mapped_column(Integer)
    severity: Mapped[int] = mapped_column(Integer)
    unit_code: Mapped[str] = mapped_column(String(16))
    subject_key: Mapped[str] = mapped_column(String(64), default="")
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    state: Mapped[str] = mapped_column(String(16))
    verify_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispose_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disposed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disposed_in_time: Mapped[bool | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_step_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_mid: Mapped[str] = mapped_column(String(64), default="")
    officer: Mapped[str] = mapped_column(String(200), default="")
    method: Mapped[int] = mapped_column(Integer, default=0)
    finding: Mapped[int] = mapped_column(Integer, default=0)
    action: Mapped[int] = mapped_column(Integer, default=0)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    escalated_verify: Mapped[bool] = mapped_column(default=False)
    escalated_dispose: Mapped[bool] = mapped_column(default=False)
    expected_change: Mapped[int] = mapped_column(Integer, default=0)
    expected_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expected_done: Mapped[bool] = mapped_column(default=False)


class CampaignRow(Base):
    """A verification campaign (``verification.request``): who was asked, who
    the police answered for, the hits, and whether its deadline passed with
    people unanswered. People are listed by subject key."""

    __tablename__ = "campaigns"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    mid: Mapped[str] = mapped_column(String(64))
    unit_code: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    asked: Mapped[list[str]] = mapped_column(JSON, default=list)
    answered: Mapped[list[str]] = mapped_column(JSON, default=list)
    results: Mapped[int] = mapped_column(Integer, default=0)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    unanswered_alerted: Mapped[bool] = mapped_column(default=False)
