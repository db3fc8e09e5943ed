"""Per-message cost of each stage of the accept path, in one process.

    .venv/bin/python benchmarks/stages.py [--database-url URL] [--messages N]

Times, on a throw-away data directory, what a gateway does for one
roster.change (to police and procuratorate, plus the bureau's feed): the
signature check, validation, routing with its three gateway signatures, the
whole ``prepare``, and the group commit's rate in batches of 250 (no broker
needed). It shows where a message's CPU goes, which ``throughput.py`` — the
whole system under load — cannot separate.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gateway import bootstrap, logs
from gateway.client import build_envelope
from gateway.config import Settings
from gateway.domain import kinds, validation
from gateway.security import jws
from gateway.service import lookups as routing_lookups
from gateway.service.provision import ensure_principals
from gateway.testing import Payloads


def _per_call(fn: Callable[[], object], number: int) -> float:
    return timeit.timeit(fn, number=number) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="default: a SQLite file")
    parser.add_argument("--messages", type=int, default=2000, help="messages for the commit rate")
    args = parser.parse_args()
    logs.configure("json", level=logging.WARNING)
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=args.database_url)
    gateway = bootstrap.build(settings)
    service = gateway.service
    key = ensure_principals(settings, gateway.store, gateway.policy)["judicial"]
    payloads = Payloads()
    envelope = build_envelope("judicial", key, kinds.ROSTER_CHANGE, payloads.enrolment())
    message = kinds.decode(envelope.kind, envelope.payload)
    now = datetime.now(UTC)
    lookups = routing_lookups.of_store(gateway.store, service.referrals)
    stages = {
        "signature check (verify_message)": lambda: jws.verify_message(
            envelope.signature,
            service.keys,
            mid=envelope.mid,
            kind=envelope.kind,
            sender=envelope.sender,
            payload=envelope.payload,
            now=time.time(),
            max_skew_seconds=120,
        ),
        "validation": lambda: validation.validate(
            envelope.kind, message, units=service.units, today=now.date()
        ),
        "routing + 3 gateway signatures": lambda: service.router.route(
            envelope, message, "0" * 64, now, now.date(), lookups
        ),
        "prepare (all of the above)": lambda: service.prepare(envelope, "judicial"),
    }
    for name, fn in stages.items():
        print(f"{name:<36} {_per_call(fn, 500):8.1f} µs")
    service.committer.close()
    envelopes = [
        build_envelope("judicial", key, kinds.ROSTER_CHANGE, payloads.enrolment())
        for _ in range(args.messages)
    ]
    pending = [service.prepare(e, "judicial") for e in envelopes]
    start = time.perf_counter()
    for first in range(0, len(pending), 250):
        service.committer._commit(pending[first : first + 250])  # the writer's own step
    seconds = time.perf_counter() - start
    print(f"{'group commit, batches of 250':<36} {len(pending) / seconds:8.0f} msg/s")


if __name__ == "__main__":
    main()
