"""Someone with write access to the database edits, deletes, reorders or inserts
audit entries, or forges checkpoints; the exported bundle then fails offline
verification, naming the entry or checkpoint (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, update

from gateway.audit import bundle, log, merkle
from gateway.audit.checkpoints import audit_signer, make_checkpoint
from gateway.audit.note import Checkpoint, Signer
from gateway.cli import main
from gateway.config import Settings
from gateway.domain.events import AuditEvent
from gateway.security.atrest import DataKeys
from gateway.store import db
from gateway.store.models import AuditCheckpoint, AuditEntry
from gateway.store.repository import Store
from tests.integration.audit_fixtures import fresh_database_url  # noqa: F401  (a fixture)

CHECKPOINT_EVERY = 10
ENTRIES = 30


@dataclass
class Log:
    settings: Settings
    store: Store
    signer: Signer

    def export(self) -> Path:
        out = self.settings.data_dir / "bundle"
        bundle.export(self.store, self.signer, out)
        return out

    def verify(self) -> bundle.Summary:
        return bundle.verify(self.export(), self.signer.verifier)

    def execute(self, statement: object) -> None:
        with self.store.transaction() as session:
            session.execute(statement)  # type: ignore[call-overload]

    def entry(self, index: int) -> bytes:
        with self.store.transaction() as session:
            return session.scalars(select(AuditEntry.entry).where(AuditEntry.idx == index)).one()


@pytest.fixture
def audit_log(fresh_database_url: str, tmp_path: Path) -> Iterator[Log]:  # noqa: F811
    """30 entries, appended in batches, with a checkpoint after every 10."""
    settings = Settings(data_dir=tmp_path / "data", database_url=fresh_database_url)
    engine = db.make_engine(fresh_database_url)
    db.upgrade(engine)
    store = Store(engine, DataKeys.ephemeral())
    signer = audit_signer(settings)
    for start in range(0, ENTRIES, CHECKPOINT_EVERY):
        for batch in range(start, start + CHECKPOINT_EVERY, 5):
            with store.transaction() as session:
                log.append(
                    session,
                    [
                        AuditEvent("accepted", "police", mid=f"m-{i}", detail={"sha256": "ab"})
                        for i in range(batch, batch + 5)
                    ],
                )
        make_checkpoint(store, signer)
    yield Log(settings, store, signer)
    engine.dispose()


def _edited(entry: bytes) -> bytes:
    return entry.replace(b'"actor":"police"', b'"actor":"judic"')


def test_an_untouched_log_verifies(audit_log: Log) -> None:
    summary = audit_log.verify()
    assert (summary.size, summary.checkpoints) == (ENTRIES, 3)


def test_an_edited_entry_is_named(audit_log: Log) -> None:
    audit_log.execute(
        update(AuditEntry).where(AuditEntry.idx == 13).values(entry=_edited(audit_log.entry(13)))
    )
    with pytest.raises(bundle.BundleError, match=r"^entry 13 was changed"):
        audit_log.verify()


def test_an_entry_edited_with_its_hash_fails_the_checkpoint_that_covers_it(audit_log: Log) -> None:
    edited = _edited(audit_log.entry(13))
    audit_log.execute(
        update(AuditEntry)
        .where(AuditEntry.idx == 13)
        .values(entry=edited, leaf_hash=merkle.leaf_hash(edited))
    )
    with pytest.raises(
        bundle.BundleError,
        match=r"^checkpoint 2 \(size 20\) does not match the entries.* from 10 to 19 was changed",
    ):
        audit_log.verify()


def test_a_deleted_entry_is_named(audit_log: Log) -> None:
    audit_log.execute(delete(AuditEntry).where(AuditEntry.idx == 13))
    with pytest.raises(bundle.BundleError, match=r"^entry 13: .* holds entry 14 instead"):
        audit_log.verify()


def test_reordered_entries_are_named(audit_log: Log) -> None:
    audit_log.execute(update(AuditEntry).where(AuditEntry.idx == 13).values(idx=-1))
    audit_log.execute(update(AuditEntry).where(AuditEntry.idx == 14).values(idx=13))
    audit_log.execute(update(AuditEntry).where(AuditEntry.idx == -1).values(idx=14))
    with pytest.raises(bundle.BundleError, match=r"^entry 13: .* holds entry 14 instead"):
        audit_log.verify()


def test_an_inserted_entry_is_named(audit_log: Log) -> None:
    forged = audit_log.entry(13).replace(b'"mid":"m-13"', b'"mid":"m-xx"')
    audit_log.execute(update(AuditEntry).where(AuditEntry.idx >= 13).values(idx=-AuditEntry.idx))
    audit_log.execute(
        update(AuditEntry).where(AuditEntry.idx <= -13).values(idx=1 - AuditEntry.idx)
    )
    with audit_log.store.transaction() as session:
        original = session.get(AuditEntry, 14)
        assert original is not None
        session.add(
            AuditEntry(
                idx=13,
                created_at=original.created_at,
                event="accepted",
                actor="police",
                mid="m-xx",
                kind="",
                entry=forged,
                leaf_hash=merkle.leaf_hash(forged),
            )
        )
    with pytest.raises(
        bundle.BundleError, match=r"^entry 13 appears again at entries.jsonl line 15"
    ):
        audit_log.verify()


def test_entries_deleted_from_the_end_are_noticed(audit_log: Log) -> None:
    audit_log.execute(delete(AuditEntry).where(AuditEntry.idx >= 25))
    with pytest.raises(
        bundle.BundleError,
        match=r"^checkpoint 3 \(size 30\) covers entries up to 29, but the bundle ends at entry 24",
    ):
        audit_log.verify()


def _replace_note(audit_log: Log, size: int, note: str) -> None:
    audit_log.execute(update(AuditCheckpoint).where(AuditCheckpoint.size == size).values(note=note))


def _note(audit_log: Log, size: int) -> str:
    with audit_log.store.transaction() as session:
        found = session.get(AuditCheckpoint, size)
        assert found is not None
        return found.note


def test_a_checkpoint_with_a_wrong_signature_is_named(audit_log: Log) -> None:
    note = _note(audit_log, 20)
    lines = note.split("\n")
    lines[2] = Checkpoint("x", 0, bytes(32)).text().split("\n")[2]  # another root, same signature
    _replace_note(audit_log, 20, "\n".join(lines))
    with pytest.raises(bundle.BundleError, match=r"^checkpoint 2 .*signature .* does not verify"):
        audit_log.verify()


def test_a_checkpoint_signed_for_the_wrong_size_is_named(audit_log: Log) -> None:
    with audit_log.store.transaction() as session:
        root_of_19 = merkle.root(
            list(session.scalars(select(AuditEntry.leaf_hash).order_by(AuditEntry.idx).limit(19)))
        )
    forged = Checkpoint.at(audit_log.signer.name, 20, root_of_19, datetime.now(UTC))
    _replace_note(audit_log, 20, audit_log.signer.sign(forged.text()))
    with pytest.raises(
        bundle.BundleError,
        match=r"^checkpoint 2 \(size 20\) is not consistent with checkpoint 1",
    ):
        audit_log.verify()


def test_a_checkpoint_beyond_the_log_is_named(audit_log: Log) -> None:
    with audit_log.store.transaction() as session:
        frontier = merkle.Frontier()
        for leaf in session.scalars(select(AuditEntry.leaf_hash).order_by(AuditEntry.idx)):
            frontier.append(leaf)
        session.add(
            AuditCheckpoint(
                size=35,
                root_hash=frontier.root(),
                created_at=datetime.now(UTC),
                note=audit_log.signer.sign(
                    Checkpoint(audit_log.signer.name, 35, frontier.root()).text()
                ),
            )
        )
    with pytest.raises(
        bundle.BundleError, match=r"^checkpoint 4 \(size 35\) covers entries up to 34"
    ):
        audit_log.verify()


def test_a_checkpoint_signed_by_an_unknown_key_is_named(audit_log: Log) -> None:
    stranger = Signer(audit_log.signer.name, Ed25519PrivateKey.generate())
    checkpoint = Checkpoint.parse(_note(audit_log, 20).split("\n\n")[0] + "\n")
    _replace_note(audit_log, 20, stranger.sign(checkpoint.text()))
    with pytest.raises(
        bundle.BundleError, match=r"^checkpoint 2 .*: not signed by silian-gateway/audit\+"
    ):
        audit_log.verify()


def test_verify_command_exits_non_zero_naming_the_entry(audit_log: Log) -> None:
    audit_log.execute(delete(AuditEntry).where(AuditEntry.idx == 7))
    out = audit_log.export()
    key = str(audit_log.signer.verifier)
    result = CliRunner().invoke(main, ["audit", "verify", str(out), "--key", key])
    assert result.exit_code == 1
    assert "does not verify: entry 7:" in result.output
    assert "Traceback" not in result.output


def test_a_bundle_edited_after_export_is_named(audit_log: Log) -> None:
    out = audit_log.export()
    lines = (out / bundle.ENTRIES).read_text().splitlines(keepends=True)
    record = json.loads(lines[21])
    record["leaf"] = record["leaf"][:-8] + "AAAAAAA="
    lines[21] = json.dumps(record) + "\n"
    (out / bundle.ENTRIES).write_text("".join(lines))
    with pytest.raises(bundle.BundleError, match=r"^entry 21"):
        bundle.verify(out, audit_log.signer.verifier)
