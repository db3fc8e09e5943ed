"""Crash safety with real processes: whatever the client holds a receipt for
is delivered, once in effect, whatever dies and when."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import grpc
import pytest

from gateway.client import AgencyClient, build_envelope
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2
from gateway.testing import GatewayProcess, enrolment, register_principals
from tests.helpers import receive_mids

MESSAGES = 400


@pytest.fixture(scope="module")
def keys(settings: Settings) -> dict:
    return register_principals(settings)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[GatewayProcess]:
    process = GatewayProcess(settings)
    process.start()
    yield process
    process.stop()


def _reader(gateway: GatewayProcess, keys: dict) -> AgencyClient:
    """The police, checking the gateway's signature of every delivery."""
    return gateway.client("police", keys["police"])


class Load:
    """Submits envelopes on one SubmitStream call in a thread (no retries: the
    call dies with the gateway), keeping receipts."""

    def __init__(
        self, client: AgencyClient, envelopes: list[envelope_pb2.Envelope], signal_after: int
    ) -> None:
        self.receipts: dict[str, envelope_pb2.Receipt] = {}
        self.reached = threading.Event()
        self._client, self._envelopes, self._after = client, envelopes, signal_after
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        requests = (exchange_pb2.SubmitStreamRequest(envelope=e) for e in self._envelopes)
        try:
            client = self._client
            for result in client.stub.SubmitStream(requests, metadata=client.metadata()):
                if result.HasField("receipt"):
                    self.receipts[result.mid] = result.receipt
                if len(self.receipts) >= self._after:
                    self.reached.set()
        except grpc.RpcError:
            pass  # the gateway died under us
        finally:
            self.reached.set()


def _resubmit_until_receipted(
    client: AgencyClient,
    envelopes: list[envelope_pb2.Envelope],
    receipts: dict[str, envelope_pb2.Receipt],
) -> None:
    missing = [e for e in envelopes if e.mid not in receipts]
    for result in client.submit_stream(missing):
        assert result.HasField("receipt"), result.rejection
        receipts[result.mid] = result.receipt


def test_kill_9_under_load_delivers_every_receipted_message(
    keys: dict, gateway: GatewayProcess
) -> None:
    envelopes = [
        build_envelope("judicial", keys["judicial"], kinds.ROSTER_CHANGE, enrolment())
        for _ in range(MESSAGES)
    ]
    sent = {e.mid for e in envelopes}
    judicial = AgencyClient.connect(gateway.target, agency="judicial", key=keys["judicial"])
    load = Load(judicial, envelopes, signal_after=random.randrange(50, 250))
    load.thread.start()
    assert load.reached.wait(60)
    gateway.kill()
    load.thread.join(30)
    receipted_before = set(load.receipts)
    assert receipted_before, "the kill came before any receipt"

    gateway.start()
    police = _reader(gateway, keys)
    delivered = receive_mids(police, receipted_before, timeout=60)
    # Everything receipted is delivered; anything else delivered was committed
    # before the kill, its receipt lost with the connection: a retry returns it.
    assert receipted_before <= set(delivered) <= sent
    judicial = AgencyClient.connect(gateway.target, agency="judicial", key=keys["judicial"])
    _resubmit_until_receipted(judicial, envelopes, load.receipts)
    for mid in receipted_before:  # a retry of a stored message gets its original receipt
        assert (
            judicial.submit_envelope(next(e for e in envelopes if e.mid == mid))
            == load.receipts[mid]
        )
    rest = receive_mids(police, sent - set(delivered), timeout=60)
    assert set(rest) | set(delivered) == sent == set(load.receipts)
    judicial.close()
    police.close()
