"""A delivery the recipient keeps giving back ends in the dead-letter queue,
where an operator sees and re-drives it; past an agency's rate limit the
gateway sheds load with RESOURCE_EXHAUSTED and a retry hint."""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest
from click.testing import CliRunner
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.cli import main
from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.domain import kinds
from gateway.testing import enrolment, verification_hit
from tests.e2e.conftest import Running
from tests.helpers import enrolled, receive_mids

DELIVERY_LIMIT = 2


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    return replace(settings, delivery_limit=DELIVERY_LIMIT, rate_limits="police=3")


def _reject_until_gone(client: AgencyClient, mid: str, idle: float = 3.0) -> int:
    """Give ``mid`` back every time it arrives, until it stops arriving."""
    rejections = 0
    with client.inbox(max_in_flight=10, idle_seconds=idle) as inbox:
        for delivery in inbox:
            if delivery.mid == mid:
                inbox.give_back(delivery)
                rejections += 1
            else:
                inbox.acknowledge(delivery)
        inbox.flush()
    return rejections


def _cli(settings: Settings, *args: str) -> str:
    env = {
        "SILIAN_BROKER_PREFIX": settings.broker_prefix,
        "SILIAN_AMQP_URL": settings.amqp_url,
        "SILIAN_DATABASE_URL": settings.database_url,
    }
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_poison_delivery_is_dead_lettered_then_replayed(running: Running) -> None:
    judicial, police = running.client("judicial"), running.client("police")
    receipt = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
    rejections = _reject_until_gone(police, receipt.mid)
    assert rejections == DELIVERY_LIMIT + 1
    listing = _cli(running.settings, "dlq", "list", "--agency", "police")
    assert receipt.mid in listing
    assert "moved 1 dead letters" in _cli(running.settings, "dlq", "replay", "police")
    assert receipt.mid in receive_mids(police, [receipt.mid])
    assert receipt.mid not in _cli(running.settings, "dlq", "list", "--agency", "police")
    judicial.close()
    police.close()


def test_past_the_rate_limit_messages_are_shed_with_a_retry_hint(running: Running) -> None:
    police = running.client("police")
    person = enrolled(running.client("judicial"))
    accepted, shed = [], []
    for _ in range(10):
        envelope = police.envelope(kinds.VERIFICATION_RESULT, verification_hit(person))
        try:
            accepted.append(police.submit_envelope(envelope, max_attempts=1))
        except grpc.RpcError as err:
            shed.append((envelope.mid, err))
    assert accepted and shed
    mid, err = shed[0]
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    retry, info = error_details_pb2.RetryInfo(), error_details_pb2.ErrorInfo()
    assert any(d.Unpack(retry) for d in status.details) and retry.retry_delay.ToMilliseconds() > 0
    assert any(d.Unpack(info) for d in status.details) and info.reason == "RATE_LIMITED"
    with pytest.raises(grpc.RpcError) as caught:
        police.status(mid)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    police.close()


def test_the_client_sends_what_was_shed_again_after_the_hint_until_accepted(
    running: Running,
) -> None:
    police = running.client("police")
    person = enrolled(running.client("judicial"))
    envelopes = [
        police.envelope(kinds.VERIFICATION_RESULT, verification_hit(person)) for _ in range(8)
    ]
    receipts = [police.submit_envelope(envelope) for envelope in envelopes]
    assert [receipt.mid for receipt in receipts] == [envelope.mid for envelope in envelopes]
    answers = police.submit_stream(  # as many as the rate (3/s), so 5 attempts are plenty
        [police.envelope(kinds.VERIFICATION_RESULT, verification_hit(person)) for _ in range(3)]
    )
    assert all(answer.HasField("receipt") for answer in answers)
    police.close()
