"""`silian serve` as its own process (the harness's ``GatewayProcess``): it
becomes healthy, serves, and stops cleanly on SIGTERM; one that cannot start
says why."""

from __future__ import annotations

import json

import pytest

from gateway.config import Settings
from gateway.domain import kinds
from gateway.testing import GatewayExited, GatewayProcess, enrolment, register_principals
from tests.helpers import receive_mids


def test_serve_delivers_and_stops_cleanly_on_sigterm(settings: Settings) -> None:
    keys = register_principals(settings)
    gateway = GatewayProcess(settings)
    try:
        gateway.start()
        judicial = gateway.client("judicial", keys["judicial"])
        police = gateway.client("police", keys["police"])
        receipt = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
        assert receipt.mid in receive_mids(police, [receipt.mid])
        judicial.close()
        police.close()
    finally:
        code = gateway.stop()
    log = gateway.log()
    assert code == 0, log[-2000:]
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert events.index("gateway.stopping") < events.index("gateway.stopped")
    accepted = [line for line in lines if line["event"] == "message.accepted"]
    assert accepted[0]["mid"] == receipt.mid and accepted[0]["agency"] == "judicial"
    assert accepted[0]["kind"] == kinds.ROSTER_CHANGE


def test_a_gateway_that_cannot_start_says_why(settings: Settings) -> None:
    gateway = GatewayProcess(settings, env={"SILIAN_COMMIT_BATCH": "many"})
    with pytest.raises(GatewayExited) as exited:
        gateway.start()
    assert "the gateway exited (1)" in str(exited.value)
    assert "'many'" in str(exited.value)  # the end of its log comes with it
    assert gateway.stop() == 1
