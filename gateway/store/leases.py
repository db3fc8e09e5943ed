"""Leases and replica heartbeats in the database (several gateways, one database).

A lease names a duty that must run on one replica at a time. ``hold`` takes
a free or expired lease (raising its ``epoch``, the fencing token) or renews
one this holder has (same epoch); ``fenced`` checks, inside a duty's own
transaction, that the lease is still this holder's at that epoch and keeps it
locked until the transaction ends, so a replica that lost its lease while
paused cannot commit the duty's work after its successor began.

Times come from the database's clock on PostgreSQL (replicas on several hosts
agree on it); SQLite serves one process, so its own clock is the only one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from gateway.store.models import Lease, Replica

#: The duties that run once among the replicas.
RELAY = "relay"
SWEEP = "sweep"
CHECKPOINT = "checkpoint"
RETENTION = "retention"
DUTIES = (RELAY, SWEEP, CHECKPOINT, RETENTION)


@dataclass(frozen=True)
class LeaseRow:
    name: str
    holder: str
    epoch: int
    expires_at: datetime
    expired: bool


@dataclass(frozen=True)
class ReplicaRow:
    id: str
    listen: str
    started_at: datetime
    seen_at: datetime
    age_seconds: float


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _now(session: Session) -> Any:
    """The current time as the database sees it (a SQL expression on PostgreSQL)."""
    return func.now() if _is_postgresql(session) else datetime.now(UTC)


def _insert(session: Session, model: type[Any]) -> Any:
    return (postgresql_insert if _is_postgresql(session) else sqlite_insert)(model)


def hold(session: Session, name: str, holder: str, ttl_seconds: float) -> int | None:
    """Take or renew lease ``name`` for ``holder`` until ``ttl_seconds`` from now;
    returns its epoch, or None when another holder's lease has not expired."""
    now = _now(session)
    until = now + timedelta(seconds=ttl_seconds)
    session.execute(
        _insert(session, Lease)
        .values(name=name, holder="", epoch=0, expires_at=datetime(1970, 1, 1, tzinfo=UTC))
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return session.execute(
        update(Lease)
        .where(Lease.name == name, (Lease.holder == holder) | (Lease.expires_at < now))
        .values(
            epoch=case((Lease.holder == holder, Lease.epoch), else_=Lease.epoch + 1),
            holder=holder,
            expires_at=until,
        )
        .returning(Lease.epoch)
    ).scalar_one_or_none()


def release(session: Session, names: list[str], holder: str) -> None:
    """Give these leases up at once (a clean shutdown): another replica need not wait."""
    session.execute(
        update(Lease)
        .where(Lease.name.in_(names), Lease.holder == holder)
        .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC))
    )


def fenced(session: Session, name: str, holder: str, epoch: int) -> bool:
    """Whether ``holder`` still holds ``name`` at ``epoch``, unexpired; the lease
    row stays locked (PostgreSQL) until the session's transaction ends."""
    now = _now(session)
    found = session.execute(
        select(Lease.name)
        .where(
            Lease.name == name,
            Lease.holder == holder,
            Lease.epoch == epoch,
            Lease.expires_at >= now,
        )
        .with_for_update()
    ).first()
    return found is not None


def leases(session: Session) -> list[LeaseRow]:
    """Every lease, with whether it has expired (by the database's clock)."""
    now = _now(session)
    rows = session.execute(
        select(Lease.name, Lease.holder, Lease.epoch, Lease.expires_at, Lease.expires_at < now)
        .where(Lease.holder != literal(""))
        .order_by(Lease.name)
    )
    return [LeaseRow(row[0], row[1], row[2], row[3], bool(row[4])) for row in rows]


def heartbeat(session: Session, replica: str, listen: str, started_at: datetime) -> None:
    """Record that ``replica`` is alive now."""
    now = _now(session)
    statement = _insert(session, Replica).values(
        id=replica, listen=listen, started_at=started_at, seen_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["id"], set_={"seen_at": statement.excluded.seen_at}
        )
    )


def forget(session: Session, replica: str) -> None:
    """Remove a replica that stopped cleanly."""
    session.query(Replica).filter(Replica.id == replica).delete()


def replicas(session: Session, within_seconds: float) -> list[ReplicaRow]:
    """Replicas seen in the last ``within_seconds`` seconds, most recent first."""
    now = _now(session)
    if _is_postgresql(session):
        age: Any = func.extract("epoch", now - Replica.seen_at)
        rows = session.execute(
            select(Replica.id, Replica.listen, Replica.started_at, Replica.seen_at, age)
            .where(Replica.seen_at >= now - timedelta(seconds=within_seconds))
            .order_by(Replica.seen_at.desc())
        )
        return [ReplicaRow(row[0], row[1], row[2], row[3], float(row[4])) for row in rows]
    rows = session.execute(
        select(Replica.id, Replica.listen, Replica.started_at, Replica.seen_at).order_by(
            Replica.seen_at.desc()
        )
    )
    found = []
    for row in rows:
        seen = row.seen_at if row.seen_at.tzinfo else row.seen_at.replace(tzinfo=UTC)
        age_seconds = (now - seen).total_seconds()
        if age_seconds <= within_seconds:
            found.append(ReplicaRow(row.id, row.listen, row.started_at, seen, age_seconds))
    return found
