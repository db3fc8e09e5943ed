"""The people behind messages: which pseudonym each recipient knows a person by
(the resident ID sealed), which people were referred to whom and whether the
referral still runs, and the keyed subject index — the ``Store``'s look-ups
by person, kept apart from the message and outbox tables' reads and writes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.domain.messages import NewMessage
from gateway.security.atrest import DataKeys
from gateway.store import sealed
from gateway.store.models import MessageSubject, SubjectPseudonym

#: Pseudonyms looked up per query (within every database's bound-parameter limit).
LOOKUP_CHUNK = 1000


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    """``values`` in slices of at most ``LOOKUP_CHUNK``."""
    for first in range(0, len(values), LOOKUP_CHUNK):
        yield values[first : first + LOOKUP_CHUNK]


def _aware(moment: datetime) -> datetime:
    """``moment`` as an aware UTC time (SQLite gives naive ones back)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class SubjectQueries:
    """The ``Store``'s look-ups and writes by person (mixed into ``Store``)."""

    data_keys: DataKeys

    def transaction(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _remember_pseudonyms(self, session: Session, message: NewMessage) -> None:
        referred = set(message.referred)
        for recipient, pseudonym, resident_id in message.pseudonyms:
            row = session.get(SubjectPseudonym, (recipient, pseudonym))
            if row is None:
                row = SubjectPseudonym(
                    recipient=recipient,
                    pseudonym=pseudonym,
                    sealed_resident_id=self.data_keys.seal_text(
                        resident_id, sealed.pseudonym_row(recipient, pseudonym)
                    ),
                    referred_at=None,
                )
                session.add(row)
            if (recipient, pseudonym) in referred and (
                row.referred_at is None or row.ended_at is not None
            ):  # referred, or referred again after the referral ended
                row.referred_at = message.accepted_at
                row.ended_at = row.last_service_at = None

    @staticmethod
    def _follow_referrals(session: Session, message: NewMessage) -> None:
        """End the referrals ``message`` ends; note a service record on those it names."""
        for recipient, pseudonym in message.ended:
            row = session.get(SubjectPseudonym, (recipient, pseudonym))
            if row is not None and row.referred_at is not None and row.ended_at is None:
                row.ended_at = message.accepted_at
        for recipient, pseudonym in message.served:
            row = session.get(SubjectPseudonym, (recipient, pseudonym))
            if row is not None and row.referred_at is not None:
                row.last_service_at = message.accepted_at

    # --- people: pseudonyms, referrals, the subject index ---------------------

    def referred_pseudonyms(self, recipient: str, active_since: datetime | None = None) -> set[str]:
        """Pseudonyms of the subjects referred to ``recipient`` whose referral
        has not ended, and — with ``active_since`` — was made or served by the
        recipient since then (``gateway.domain.referrals``)."""
        with self.transaction() as session:
            query = select(SubjectPseudonym.pseudonym).where(
                SubjectPseudonym.recipient == recipient,
                SubjectPseudonym.referred_at.is_not(None),
                SubjectPseudonym.ended_at.is_(None),
            )
            if active_since is not None:
                last = func.coalesce(SubjectPseudonym.last_service_at, SubjectPseudonym.referred_at)
                query = query.where(last >= active_since)
            return set(session.scalars(query))

    @staticmethod
    def is_referred_in(session: Session, recipient: str, pseudonym: str) -> bool:
        """Whether the subject was ever referred to ``recipient`` (its records
        of the person are taken even after the referral ended)."""
        row = session.get(SubjectPseudonym, (recipient, pseudonym))
        return row is not None and row.referred_at is not None

    @staticmethod
    def referred_among_in(session: Session, recipient: str, pseudonyms: Sequence[str]) -> set[str]:
        """Those of ``pseudonyms`` whose person was referred to ``recipient``: one
        query per ``LOOKUP_CHUNK`` pseudonyms, never one per pseudonym."""
        found: set[str] = set()
        for chunk in chunks(sorted(set(pseudonyms))):
            found.update(
                session.scalars(
                    select(SubjectPseudonym.pseudonym).where(
                        SubjectPseudonym.recipient == recipient,
                        SubjectPseudonym.pseudonym.in_(chunk),
                        SubjectPseudonym.referred_at.is_not(None),
                    )
                )
            )
        return found

    @staticmethod
    def is_actively_referred_in(
        session: Session, recipient: str, pseudonym: str, active_since: datetime | None
    ) -> bool:
        """Whether the subject's referral to ``recipient`` runs (see ``referred_pseudonyms``)."""
        row = session.get(SubjectPseudonym, (recipient, pseudonym))
        if row is None or row.referred_at is None or row.ended_at is not None:
            return False
        if active_since is None:
            return True
        last = row.last_service_at or row.referred_at
        return _aware(last) >= active_since

    def messages_about(self, subject_key: str) -> list[tuple[str, str]]:
        """(sender, mid) of every accepted message naming the subject."""
        with self.transaction() as session:
            rows = session.execute(
                select(MessageSubject.sender, MessageSubject.mid)
                .where(MessageSubject.subject_key == subject_key)
                .order_by(MessageSubject.sender, MessageSubject.mid)
            )
            return [(sender, mid) for sender, mid in rows]

    def resident_id_of_pseudonym(self, pseudonym: str) -> str | None:
        """The resident ID behind a pseudonym issued to any recipient."""
        with self.transaction() as session:
            return self.resident_id_of_pseudonym_in(session, pseudonym)

    @staticmethod
    def resident_id_of_pseudonym_in(session: Session, pseudonym: str) -> str | None:
        row = session.execute(
            select(SubjectPseudonym.recipient, SubjectPseudonym.sealed_resident_id)
            .where(SubjectPseudonym.pseudonym == pseudonym)
            .limit(1)
        ).first()
        if row is None:
            return None
        return sealed.keys_of(session).open_text(
            row.sealed_resident_id, sealed.pseudonym_row(row.recipient, pseudonym)
        )

    def resident_ids_of_pseudonyms(self, pseudonyms: Sequence[str]) -> dict[str, str]:
        """The resident ID behind each of ``pseudonyms`` the gateway issued (to any
        recipient); pseudonyms it never issued are left out."""
        with self.transaction() as session:
            return self.resident_ids_of_pseudonyms_in(session, pseudonyms)

    @staticmethod
    def resident_ids_of_pseudonyms_in(
        session: Session, pseudonyms: Sequence[str]
    ) -> dict[str, str]:
        """As ``resident_ids_of_pseudonyms``, in ``session``: one query per
        ``LOOKUP_CHUNK`` pseudonyms."""
        found: dict[str, str] = {}
        keys = sealed.keys_of(session)
        for chunk in chunks(sorted(set(pseudonyms))):
            rows = session.execute(
                select(
                    SubjectPseudonym.pseudonym,
                    SubjectPseudonym.recipient,
                    SubjectPseudonym.sealed_resident_id,
                ).where(SubjectPseudonym.pseudonym.in_(chunk))
            )
            found.update(
                {
                    pseudonym: keys.open_text(sealed_id, sealed.pseudonym_row(recipient, pseudonym))
                    for pseudonym, recipient, sealed_id in rows
                }
            )
        return found

    def resolve_pseudonym(self, recipient: str, pseudonym: str) -> str | None:
        with self.transaction() as session:
            row = session.get(SubjectPseudonym, (recipient, pseudonym))
            if row is None:
                return None
            return self.data_keys.open_text(
                row.sealed_resident_id, sealed.pseudonym_row(recipient, pseudonym)
            )
