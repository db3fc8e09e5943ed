"""Retention: ``silian retention run`` purges the payloads of someone released
more than ``retention_years`` ago — and only theirs — while receipts, status
and the audit log stay, and the exported audit bundle still verifies."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from gateway import bootstrap
from gateway.cli import main
from gateway.client import AgencyClient
from gateway.domain import kinds
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.store.models import AuditEntry, OutboxRow, StoredMessage
from gateway.testing import enrolment, resident_id
from tests.e2e.conftest import Running

Clients = Callable[[str], AgencyClient]
TODAY = date.today()


def _enrolled(person: str, on: date) -> pb.RosterChange:
    change = enrolment(person)
    change.effective_date = change.term_start_date = on.isoformat()
    change.term_end_date = (on + timedelta(days=365)).isoformat()
    return change


def _released(person: str, on: date) -> pb.RosterChange:
    return pb.RosterChange(
        change_id=f"RC-{uuid.uuid4().hex[:12]}",
        change_type=pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED,
        subject=pb.Subject(resident_id=person, name="王某"),
        unit_code="610302",
        effective_date=on.isoformat(),
    )


def _both(first: str, second: str) -> pb.VerificationRequest:
    return pb.VerificationRequest(
        request_id=f"VQ-{uuid.uuid4().hex[:12]}",
        reason="核查",
        unit_code="610302",
        subjects=[pb.Subject(resident_id=first), pb.Subject(resident_id=second)],
        check_types=[pb.CHECK_TYPE_HOTEL_STAY],
    )


def test_a_purged_persons_payloads_are_gone_and_the_audit_log_still_verifies(
    running: Running, client: Clients, tmp_path: Path
) -> None:
    judicial = client("judicial")
    long_gone, recent = resident_id(), resident_id()
    years_ago = TODAY - timedelta(days=7 * 365)
    purged = [
        judicial.submit(kinds.ROSTER_CHANGE, _enrolled(long_gone, years_ago)),
        judicial.submit(kinds.ROSTER_CHANGE, _released(long_gone, years_ago + timedelta(days=365))),
    ]
    kept = [
        judicial.submit(kinds.ROSTER_CHANGE, _enrolled(recent, TODAY - timedelta(days=400))),
        judicial.submit(kinds.ROSTER_CHANGE, _released(recent, TODAY - timedelta(days=35))),
        judicial.submit(kinds.VERIFICATION_REQUEST, _both(long_gone, recent)),
    ]
    settings = running.settings
    runner = CliRunner()

    def silian(*args: str) -> str:
        result = runner.invoke(
            main,
            ["--data-dir", str(settings.data_dir), *args],
            env={"SILIAN_DATABASE_URL": settings.database_url},
        )
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "would purge 2 messages of 1 people" in silian("retention", "run", "--dry-run")
    assert "purged 2 messages of 1 people" in silian("retention", "run", "--years", "5")

    store = bootstrap.open_store(settings)
    with store.transaction() as session:
        for receipt in purged:
            message = session.get(StoredMessage, ("judicial", receipt.mid))
            assert message is not None and message.payload == b""
            assert message.receipt  # the receipt and digest stay
            bodies = session.scalars(select(OutboxRow.body).where(OutboxRow.mid == receipt.mid))
            assert set(bodies) == {b""}
        for receipt in kept:
            message = session.get(StoredMessage, ("judicial", receipt.mid))
            assert message is not None and store.payload_of(message)
        entries = session.scalars(
            select(AuditEntry.mid).where(AuditEntry.event == "payload.purged")
        ).all()
    store.engine.dispose()
    assert sorted(entries) == sorted(r.mid for r in purged)
    status = judicial.status(purged[0].mid)
    assert status.mid == purged[0].mid and status.kind == kinds.ROSTER_CHANGE
    assert "purged 0 messages" in silian("retention", "run", "--years", "5")

    silian("audit", "checkpoint")
    out = str(tmp_path / "bundle")
    silian("audit", "export", "--out", out)
    key = silian("audit", "key").strip()
    assert "OK:" in silian("audit", "verify", out, "--key", key)
