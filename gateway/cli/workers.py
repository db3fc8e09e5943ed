"""``silian serve --workers N``: N gateway processes on one host sharing the port.

Each worker is a whole ``silian serve`` (a replica: its own gRPC server, group
commit and lease keeper) listening on the same address with SO_REUSEPORT, so
the kernel spreads connections over them and one host's cores are all used.
The parent prepares what they share once (schema, keys), starts them, restarts
one that dies, and passes SIGTERM/SIGINT on. Replicas need PostgreSQL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import structlog

from gateway import bootstrap
from gateway.audit.checkpoints import audit_signer
from gateway.config import Settings
from gateway.domain.errors import FailedPrecondition
from gateway.store import db

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1
#: Seconds between checks that every worker runs; a worker that died is started again.
CHECK_SECONDS = 0.5


def prepare_shared(settings: Settings) -> None:
    """What every replica shares, made once before any starts: the schema, the
    policy file and every key (gateway, audit, subject index, pseudonyms)."""
    store = bootstrap.open_store(settings)
    store.engine.dispose()
    policy = bootstrap.load_policy(settings)
    bootstrap.gateway_signer(settings)
    audit_signer(settings)
    bootstrap.subject_keys(settings)
    key_for = bootstrap.pseudonym_keys(settings)
    for recipient in bootstrap.recipients(policy):
        key_for(recipient)


def _check(settings: Settings, count: int) -> None:
    if count < 1:
        raise FailedPrecondition("BAD_WORKERS", "--workers must be at least 1")
    if db.is_sqlite(settings.effective_database_url):
        raise FailedPrecondition(
            "WORKERS_NEED_POSTGRESQL",
            "--workers runs several gateway processes, and SQLite serves one: set "
            "SILIAN_DATABASE_URL (or --database-url) to a PostgreSQL database",
        )
    if settings.listen.rsplit(":", 1)[-1] == "0":
        raise FailedPrecondition("BAD_LISTEN", "--workers needs a fixed port to share (not port 0)")


def _end_with_parent() -> None:
    """In a worker before it runs: SIGTERM when the parent dies, however it dies
    (Linux ``prctl(PR_SET_PDEATHSIG)``), so no worker outlives its supervisor."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _metrics_env(listen: str, number: int) -> dict[str, str]:
    """Worker ``number`` serves metrics on the configured port + ``number``."""
    if not listen:
        return {}
    host, _, port = listen.rpartition(":")
    return {"SILIAN_METRICS_LISTEN": f"{host}:{int(port) + number}"}


def run_workers(settings: Settings, count: int, env: dict[str, str]) -> int:
    """Run ``count`` workers until SIGTERM/SIGINT; returns the exit status.

    ``env`` holds the ``SILIAN_*`` settings given on the command line, passed
    to every worker with ``SILIAN_REUSE_PORT=1``."""
    _check(settings, count)
    prepare_shared(settings)
    silian = str(Path(sys.executable).with_name("silian"))
    command = [silian, "--data-dir", str(settings.data_dir), "--log-format", settings.log_format]
    worker_env = {**os.environ, **env, "SILIAN_REUSE_PORT": "1"}
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)

    def start(number: int) -> subprocess.Popen[bytes]:
        own = {**worker_env, **_metrics_env(settings.metrics_listen, number)}
        process = subprocess.Popen([*command, "serve"], env=own, preexec_fn=_end_with_parent)
        log.info("worker.started", worker=number, pid=process.pid, listen=settings.listen)
        return process

    workers = [start(number) for number in range(count)]
    while not stopping.wait(CHECK_SECONDS):
        for number, process in enumerate(workers):
            code = process.poll()
            if code is not None and not stopping.is_set():
                log.warning("worker.exited", worker=number, pid=process.pid, code=code)
                time.sleep(min(CHECK_SECONDS, 1.0))
                workers[number] = start(number)
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + settings.shutdown_grace_seconds + 10
    for process in workers:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.info("workers.stopped", count=count)
    return 0
