"""Rotating the gateway's certificate under load fails no call: new connections
get the new certificate, open ones keep theirs, and a key written before its
certificate (a rotation half done) is never served. ``silian serve`` takes
SIGHUP as "read the certificates again", not as the end."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from gateway.client import AgencyClient, channel_credentials
from gateway.config import Settings
from gateway.domain import kinds
from gateway.security import pki
from gateway.testing import (
    BackgroundGateway,
    GatewayProcess,
    enrolment,
    register_principals,
    serving_mtls,
)
from tests.conftest import PRINCIPALS

ROTATIONS = 3


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'silian.db'}"


@dataclass
class Load:
    """Submits from other threads until stopped, counting answers and failures."""

    make: Callable[[], AgencyClient]
    stop: threading.Event = field(default_factory=threading.Event)
    accepted: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fresh_connections(self) -> None:
        """A new connection (and TLS handshake) for every message."""
        while not self.stop.is_set():
            client = self.make()
            try:
                self._submit(client)
            finally:
                client.close()

    def one_connection(self) -> None:
        client = self.make()
        try:
            while not self.stop.is_set():
                self._submit(client)
        finally:
            client.close()

    def _submit(self, client: AgencyClient) -> None:
        try:
            client.submit(kinds.ROSTER_CHANGE, enrolment(), timeout=20, max_attempts=1)
        except grpc.RpcError as err:
            with self.lock:
                self.failures.append(f"{err.code().name}: {err.details()}")  # type: ignore[attr-defined]
            return
        with self.lock:
            self.accepted += 1


def _served_serial(target: str, folder: Path) -> int:
    """The serial of the certificate the gateway presents to a new connection."""
    context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
    context.load_cert_chain(folder / "judicial.pem", folder / "judicial.key")
    context.set_alpn_protocols(["h2"])
    host, port = target.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)  # polling a condition with a deadline


@pytest.fixture(scope="module")
def gateway(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    folder = tmp_path_factory.mktemp("pki")
    tls = serving_mtls(settings, folder, PRINCIPALS)
    keys = register_principals(tls)
    credentials = channel_credentials(
        folder / "ca.pem", folder / "judicial.pem", folder / "judicial.key"
    )
    with BackgroundGateway(tls, credentials=credentials) as running:
        yield running, keys, folder, credentials


def test_rotating_the_server_certificate_under_load_fails_no_call(gateway: tuple) -> None:
    running, keys, folder, credentials = gateway

    def make() -> AgencyClient:
        # A channel of its own subchannels: a new TCP connection and handshake.
        channel = grpc.secure_channel(
            running.target, credentials, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        return AgencyClient(channel, "judicial", keys["judicial"], running.settings.gateway_id)

    load = Load(make)
    threads = [
        threading.Thread(target=load.fresh_connections, daemon=True),
        threading.Thread(target=load.fresh_connections, daemon=True),
        threading.Thread(target=load.one_connection, daemon=True),
    ]
    for thread in threads:
        thread.start()
    ca = pki.read_issued(folder, "ca")
    served = [_served_serial(running.target, folder)]
    try:
        _wait_for(lambda: load.accepted >= 10, 30, "the load to start")
        for _ in range(ROTATIONS):
            new = pki.issue(ca, running.settings.gateway_id, hosts=pki.LOCAL_NAMES)
            pki.write_issued(folder, "gateway", new)  # the key first, then the certificate
            serial = pki.serial_of(new.cert)
            _wait_for(
                lambda serial=serial: _served_serial(running.target, folder) == serial,  # type: ignore[misc]
                10,
                "the new certificate to be served",
            )
            served.append(serial)
            before = load.accepted
            _wait_for(lambda before=before: load.accepted >= before + 10, 30, "more calls")  # type: ignore[misc]
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(30)
    assert len(set(served)) == ROTATIONS + 1
    assert load.failures == []
    assert load.accepted >= 10 * (ROTATIONS + 1)


def test_serve_reads_its_certificate_again_on_sighup(settings: Settings, tmp_path: Path) -> None:
    own = replace(
        settings, data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'g.db'}"
    )
    folder = tmp_path / "pki"
    pki.init_pki(folder, PRINCIPALS, gateway_name=own.gateway_id)
    keys = register_principals(own)
    credentials = channel_credentials(
        folder / "ca.pem", folder / "judicial.pem", folder / "judicial.key"
    )
    env = {
        "SILIAN_TLS_CERT": str(folder / "gateway.pem"),
        "SILIAN_TLS_KEY": str(folder / "gateway.key"),
        "SILIAN_CLIENT_CA": str(folder / "ca.pem"),
    }
    gateway = GatewayProcess(own, env=env, credentials=credentials)
    try:
        gateway.start()
        new = pki.issue(pki.read_issued(folder, "ca"), own.gateway_id, hosts=pki.LOCAL_NAMES)
        pki.write_issued(folder, "gateway", new)
        os.kill(gateway.pid, signal.SIGHUP)
        _wait_for(
            lambda: _served_serial(gateway.target, folder) == pki.serial_of(new.cert),
            10,
            "the new certificate to be served",
        )
        judicial = gateway.client("judicial", keys["judicial"])
        assert judicial.submit(kinds.ROSTER_CHANGE, enrolment()).audit_index >= 0
        judicial.close()
        assert gateway.running()
    finally:
        code = gateway.stop()
    assert code == 0, gateway.log_tail()
    assert "tls.reload_requested" in gateway.log()
