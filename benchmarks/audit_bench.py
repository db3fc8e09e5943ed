"""The audit log's costs: append rate inside a batch transaction, proof time at
a million entries, and offline verification of a million-entry bundle.

    .venv/bin/python benchmarks/audit_bench.py [--database sqlite|postgresql|both]
        [--entries 1000000] [--batch 200] [--append-entries 40000]

Each run works in a throw-away SQLite file or PostgreSQL schema (at
SILIAN_TEST_POSTGRES_URL, default the test database) and deletes it after.
Entries look like real ones: a ``routed`` event with a recipient, route, view
and two SHA-256 digests. Targets (issue 4): append ≥ 20,000 entries/s, a proof
< 2 ms at 1,000,000 entries, ``silian audit verify`` of 1,000,000 entries < 60 s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.audit import bundle, log, tree
from gateway.audit.checkpoints import audit_signer, make_checkpoint
from gateway.config import Settings
from gateway.domain.events import AuditEvent
from gateway.security.atrest import DataKeys
from gateway.store import db
from gateway.store.repository import Store
from gateway.testing import LOCAL_POSTGRES_URL, postgres_schema

POSTGRES_URL = os.environ.get("SILIAN_TEST_POSTGRES_URL", LOCAL_POSTGRES_URL)


@contextmanager
def database(kind: str, directory: Path) -> Iterator[Store]:
    """A migrated, empty database of ``kind``, dropped afterwards."""
    if kind == "sqlite":
        engine = db.make_engine(f"sqlite:///{directory / 'bench.db'}")
        db.upgrade(engine)
        yield Store(engine, DataKeys.ephemeral())
        engine.dispose()
        return
    with postgres_schema(POSTGRES_URL, "bench") as url:
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            yield Store(engine, DataKeys.ephemeral())
        finally:
            engine.dispose()


def events(count: int) -> list[AuditEvent]:
    return [
        AuditEvent(
            "routed",
            "gateway",
            mid=str(uuid.uuid4()),
            kind="roster.change",
            detail={
                "recipient": "police",
                "policy": "roster.police",
                "view": "full",
                "view_sha256": os.urandom(32).hex(),
                "policy_sha256": os.urandom(32).hex(),
            },
        )
        for _ in range(count)
    ]


def append(store: Store, count: int, batch: int, report: Callable[[int], None]) -> float:
    """Append ``count`` entries in transactions of ``batch``; returns entries/s."""
    template = events(batch)
    started, done = time.perf_counter(), 0
    while done < count:
        with store.transaction() as session:
            log.append(session, template[: min(batch, count - done)])
        done += min(batch, count - done)
        report(done)
    return count / (time.perf_counter() - started)


def proof_times(store: Store, size: int, samples: int = 500) -> tuple[float, float]:
    """Median milliseconds of an inclusion and of a consistency proof at ``size``."""
    rng = random.Random(1)
    inclusion, consistency = [], []
    for _ in range(samples):
        with store.transaction() as session:
            started = time.perf_counter()
            tree.inclusion_proof(session, rng.randrange(size), size)
            inclusion.append(time.perf_counter() - started)
        with store.transaction() as session:
            started = time.perf_counter()
            tree.consistency_proof(session, rng.randrange(1, size), size)
            consistency.append(time.perf_counter() - started)
    return statistics.median(inclusion) * 1000, statistics.median(consistency) * 1000


def run(kind: str, entries: int, batch: int, append_entries: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        with database(kind, directory) as store:
            rate = append(store, append_entries, batch, lambda _: None)
            print(f"[{kind}] append: {rate:,.0f} entries/s ({batch} per transaction)")
            append(store, entries - append_entries, 2000, lambda _: None)
            signer = audit_signer(Settings(data_dir=directory))
            make_checkpoint(store, signer)
            inclusion, consistency = proof_times(store, entries)
            print(
                f"[{kind}] proofs at {entries:,} entries: inclusion {inclusion:.2f} ms, "
                f"consistency {consistency:.2f} ms (median, including the transaction)"
            )
            started = time.perf_counter()
            bundle.export(store, signer, directory / "bundle")
            print(f"[{kind}] export of {entries:,} entries: {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            summary = bundle.verify(directory / "bundle", signer.verifier)
            print(
                f"[{kind}] verify of {summary.size:,} entries, {summary.checkpoints} "
                f"checkpoints: {time.perf_counter() - started:.1f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--append-entries", type=int, default=40_000)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for kind in kinds:
        run(kind, args.entries, args.batch, min(args.append_entries, args.entries))


if __name__ == "__main__":
    main()
