"""Self-contained audit bundles: ``silian audit export`` writes one from the
database, ``silian audit verify`` checks one offline, with nothing but the
bundle and the verifier key.

A bundle is a directory of:

``entries.jsonl``
    one line per entry, in index order: ``{"index": i, "leaf": base64(the
    entry's canonical bytes), "leaf_hash": base64(the leaf hash the gateway
    stored when it appended the entry)}``.
``checkpoints.jsonl``
    every checkpoint up to the bundle's size, smallest first: ``{"size": n,
    "note": the C2SP signed note, "consistency": [base64 hash, …]}``, where
    ``consistency`` is the RFC 9162 proof that the previous checkpoint's tree
    is a prefix of this one (absent on the first line).
``checkpoint``
    the newest signed note, as a transparency log serves it.
``verifier.key``
    the audit key's verifier key; compare it with the one you got from the
    bureau out of band (``silian audit key``), or pass that one to verify.
``manifest.json``
    the format (``silian-audit-bundle/1``), origin, size and export time.

Verification walks the entries once, in order, and stops at the first
problem, naming the entry or checkpoint: an entry whose line or bytes are not
at its index (deleted, inserted or reordered entries), whose bytes do not hash
to the leaf hash recorded when it was appended (an edited entry), a
checkpoint whose signature does not verify with the verifier key, whose proof
of consistency with the previous checkpoint fails, whose root is not the root
of the entries it covers (entries changed since, hashes and all), or that
covers more entries than the bundle holds.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import select

from gateway.audit import merkle, tree
from gateway.audit.checkpoints import make_checkpoint
from gateway.audit.merkle import Frontier, ProofError
from gateway.audit.note import Checkpoint, NoteError, Signer, Verifier, open_checkpoint
from gateway.store.models import AuditCheckpoint, AuditEntry
from gateway.store.repository import Store

FORMAT = "silian-audit-bundle/1"
ENTRIES = "entries.jsonl"
CHECKPOINTS = "checkpoints.jsonl"
LATEST = "checkpoint"
VERIFIER = "verifier.key"
MANIFEST = "manifest.json"
PROGRESS_STEP = 10_000

#: Called with the number of entries just checked.
Advance = Callable[[int], None]


class Progress(Protocol):
    """Where an export reports how far it got."""

    def start(self, total: int | None) -> None: ...

    def advance(self, count: int) -> None: ...


class _Quiet:
    def start(self, total: int | None) -> None:
        """Nothing to show."""

    def advance(self, count: int) -> None:
        """Nothing to show."""


class BundleError(Exception):
    """The bundle does not verify (or cannot be read); the message says where and why."""


@dataclass(frozen=True)
class Summary:
    """What an export wrote or a verification checked."""

    origin: str
    size: int
    checkpoints: int
    root_hash: bytes
    verifier: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def export(store: Store, signer: Signer, out: Path, progress: Progress | None = None) -> Summary:
    """Checkpoint the log as it is now, then write the bundle of everything up
    to that checkpoint into ``out`` (created; existing bundle files are replaced)."""
    progress = progress or _Quiet()
    newest = make_checkpoint(store, signer)
    progress.start(newest.size)
    out.mkdir(parents=True, exist_ok=True)
    with store.transaction() as session:
        rows = list(
            session.scalars(
                select(AuditCheckpoint)
                .where(AuditCheckpoint.size <= newest.size)
                .order_by(AuditCheckpoint.size)
            )
        )
        records: list[dict[str, Any]] = []
        for previous, row in zip([None, *rows], rows, strict=False):
            record: dict[str, Any] = {"size": row.size, "note": row.note}
            if previous is not None and previous.size:
                try:
                    proof = tree.consistency_proof(session, previous.size, row.size)
                    record["consistency"] = [_b64(h) for h in proof]
                except (tree.MissingNode, ProofError):
                    record["consistency"] = None  # verify reports it
            records.append(record)
    with (out / CHECKPOINTS).open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    (out / LATEST).write_text(newest.note, encoding="utf-8")
    (out / VERIFIER).write_text(f"{signer.verifier}\n", encoding="utf-8")
    with (out / ENTRIES).open("w", encoding="utf-8") as handle:
        _write_entries(store, newest.size, handle, progress.advance)
    manifest = {
        "format": FORMAT,
        "origin": signer.name,
        "size": newest.size,
        "checkpoints": len(records),
        "exported_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return Summary(signer.name, newest.size, len(records), newest.root_hash, str(signer.verifier))


def _write_entries(store: Store, size: int, handle: TextIO, advance: Advance) -> None:
    query = (
        select(AuditEntry.idx, AuditEntry.entry, AuditEntry.leaf_hash)
        .where(AuditEntry.idx < size)
        .order_by(AuditEntry.idx)
        .execution_options(yield_per=5000)
    )
    with store.transaction() as session:
        for partition in session.execute(query).partitions():
            handle.writelines(
                f'{{"index":{index},"leaf":"{_b64(entry)}","leaf_hash":"{_b64(digest)}"}}\n'
                for index, entry, digest in partition
            )
            advance(len(partition))


def bundle_size(directory: Path) -> int | None:
    """The number of entries the manifest announces, if it can be read."""
    try:
        return int(json.loads((directory / MANIFEST).read_text(encoding="utf-8"))["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def bundled_verifier(directory: Path) -> Verifier:
    """The verifier key written into the bundle."""
    try:
        return Verifier.parse((directory / VERIFIER).read_text(encoding="utf-8"))
    except OSError as err:
        raise BundleError(f"cannot read the bundle's verifier key: {err}") from None
    except NoteError as err:
        raise BundleError(f"{VERIFIER}: {err}") from None


def verify(directory: Path, verifier: Verifier, advance: Advance = lambda _: None) -> Summary:
    """Check the bundle in ``directory`` against ``verifier``; BundleError
    naming the first bad entry or checkpoint if it does not verify."""
    _read_manifest(directory)
    pending = deque(_read_checkpoints(directory))
    walk = _Walk(verifier)
    for position, line in enumerate(_lines(directory / ENTRIES)):
        while pending and _size_of(pending[0]) <= position:
            walk.checkpoint(*pending.popleft())
        walk.entry(position, line)
        if position % PROGRESS_STEP == PROGRESS_STEP - 1:
            advance(PROGRESS_STEP)
    advance(walk.frontier.size % PROGRESS_STEP)
    for line_number, record in pending:
        walk.checkpoint(line_number, record)
    if walk.latest is None:
        raise BundleError(f"{CHECKPOINTS} holds no checkpoint")
    if walk.latest.size != walk.frontier.size:
        raise BundleError(
            f"entries {walk.latest.size} to {walk.frontier.size - 1} are not covered by "
            "any checkpoint: they were added to the bundle after the export"
        )
    return Summary(
        verifier.name, walk.frontier.size, walk.checkpoints, walk.latest.root_hash, str(verifier)
    )


def _size_of(pending: tuple[int, dict[str, Any]]) -> int:
    size = pending[1].get("size")
    return size if isinstance(size, int) else -1


class _Walk:
    """The state of one verification: the recomputed tree and the last checkpoint."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.frontier = Frontier()
        self.latest: Checkpoint | None = None
        self.latest_line = 0
        self.checkpoints = 0

    def entry(self, position: int, line: str) -> None:
        where = f"entry {position} ({ENTRIES} line {position + 1})"
        try:
            record = json.loads(line)
            listed = record["index"]
            leaf = base64.b64decode(record["leaf"], validate=True)
            recorded = base64.b64decode(record.get("leaf_hash", ""), validate=True)
            claimed = json.loads(leaf)["index"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise BundleError(f"{where} is not a well-formed audit entry") from None
        for index in (listed, claimed):
            if index != position:
                raise BundleError(_misplaced(position, index))
        digest = merkle.leaf_hash(leaf)
        if recorded and digest != recorded:
            raise BundleError(
                f"entry {position} was changed: its bytes do not hash to the leaf hash "
                "recorded when it was appended"
            )
        self.frontier.append(digest)

    def checkpoint(self, line_number: int, record: dict[str, Any]) -> None:
        where = f"checkpoint {line_number} ({CHECKPOINTS} line {line_number})"
        try:
            checkpoint = open_checkpoint(str(record.get("note", "")), self.verifier)
        except NoteError as err:
            raise BundleError(f"{where}: {err}") from None
        if record.get("size") != checkpoint.size:
            raise BundleError(
                f"{where}: the line says size {record.get('size')}, its signed note "
                f"{checkpoint.size}"
            )
        where = f"checkpoint {line_number} (size {checkpoint.size})"
        if checkpoint.size > self.frontier.size:
            raise BundleError(
                f"{where} covers entries up to {checkpoint.size - 1}, but the bundle ends "
                f"at entry {self.frontier.size - 1}: entries were deleted"
            )
        if checkpoint.size < self.frontier.size:
            raise BundleError(
                f"{where} is out of order: it comes after entry {self.frontier.size - 1}"
            )
        self._check_consistency(where, record, checkpoint)
        if self.frontier.root() != checkpoint.root_hash:
            since = self.latest.size if self.latest else 0
            raise BundleError(
                f"{where} does not match the entries: its signed root is not the root of "
                f"entries 0 to {checkpoint.size - 1}, so an entry from {since} to "
                f"{checkpoint.size - 1} was changed, inserted or removed after it was signed"
            )
        self.latest, self.latest_line = checkpoint, line_number
        self.checkpoints += 1

    def _check_consistency(self, where: str, record: dict[str, Any], new: Checkpoint) -> None:
        old = self.latest
        if old is None or old.size == 0:
            return
        proof = record.get("consistency")
        try:
            hashes = [base64.b64decode(h, validate=True) for h in proof or ()]
        except (binascii.Error, TypeError, ValueError):
            proof = None
        if proof is None:
            raise BundleError(
                f"{where} has no proof of consistency with checkpoint {self.latest_line}"
            )
        try:
            merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, hashes)
        except ProofError as err:
            raise BundleError(
                f"{where} is not consistent with checkpoint {self.latest_line}: {err}"
            ) from None


def _misplaced(position: int, found: object) -> str:
    if isinstance(found, int) and found < position:
        return (
            f"entry {found} appears again at {ENTRIES} line {position + 1}, where entry "
            f"{position} belongs: an entry was inserted or entries were reordered"
        )
    return (
        f"entry {position}: {ENTRIES} line {position + 1} holds entry {found} instead: "
        "entries were deleted or reordered"
    )


def _read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except OSError:
        raise BundleError(f"{directory} is not an audit bundle (no {MANIFEST})") from None
    except ValueError:
        raise BundleError(f"{MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{MANIFEST}: not a {FORMAT} bundle")
    return manifest


def _read_checkpoints(directory: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(_lines(directory / CHECKPOINTS), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            raise BundleError(f"{CHECKPOINTS} line {number} is not JSON") from None
        if not isinstance(record, dict):
            raise BundleError(f"{CHECKPOINTS} line {number} is not a checkpoint record")
        yield number, record


def _lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8") as handle:
            yield from handle
    except OSError as err:
        raise BundleError(f"cannot read {path.name}: {err.strerror}") from None
