"""``silian retention run`` and the gateway's daily retention sweep: purge the
payloads of people whose supervision ended more than ``retention_years`` ago
(``gateway.domain.retention``), recording each purge in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import structlog

from gateway.audit import log as audit_log
from gateway.domain import events, retention
from gateway.domain.events import AuditEvent
from gateway.store import purge
from gateway.store.repository import Store

log = structlog.get_logger(__name__)

ACTOR = "gateway"


@dataclass(frozen=True)
class Purged:
    """What one retention run did (or, dry, would do)."""

    people: int
    messages: int
    rows_forgotten: int


def run(
    store: Store,
    *,
    subject_key: Callable[[str], str],
    years: int,
    today: date,
    now: datetime,
    dry_run: bool = False,
) -> Purged:
    """Purge the messages that name only people whose supervision ended before
    ``retention.cutoff(today, years)``, and those people's pseudonyms and
    linkage state. Each purged message gets a ``payload.purged`` audit entry."""
    expired = retention.expired(purge.roster_events(store, subject_key), today, years)
    messages = purge.messages_only_about(store, expired)
    if dry_run:
        return Purged(len(expired), len(messages), 0)
    kinds = purge.purge_messages(store, messages, now)
    forgotten = purge.forget_people(store, expired, subject_key)
    cutoff = retention.cutoff(today, years).isoformat()
    audit_log.record(
        store,
        [
            AuditEvent(
                events.PAYLOAD_PURGED,
                ACTOR,
                mid=mid,
                kind=kinds[(sender, mid)],
                detail={"sender": sender, "retention_years": years, "cutoff": cutoff},
            )
            for sender, mid in messages
        ],
    )
    log.info(
        "retention.purged",
        people=len(expired),
        messages=len(messages),
        rows_forgotten=forgotten,
        retention_years=years,
    )
    return Purged(len(expired), len(messages), forgotten)
