"""Deadlines in real time: a gateway whose disposal deadlines are compressed
(``disposal_time_scale``) lists an unverified alert as overdue once its
deadline passes, and its sweep escalates it to the bureau and the
procuratorate — with the clock, not a simulated moment."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.testing import Payloads
from tests.e2e.conftest import Running

#: 越界 must be verified within 4 h: here within 4 h × 0.0005 = 7.2 s.
SCALE = 0.0005


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    return replace(settings, disposal_time_scale=SCALE)


def _overdue_listing(running: Running) -> str:
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(running.settings.data_dir), "alerts", "list", "--overdue"],
        env={"SILIAN_DATABASE_URL": running.settings.database_url},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_an_unverified_alert_becomes_overdue_and_is_escalated_once(running: Running) -> None:
    payloads = Payloads()
    bureau, police = running.client("judicial"), running.client("police")
    person = payloads.resident_id("610302")
    bureau.submit(kinds.ROSTER_CHANGE, payloads.enrolment(person))
    police.submit(kinds.VERIFICATION_RESULT, payloads.verification_hit(person))
    alerts = [
        kinds.decode(d.kind, d.payload) for d in bureau.drain(2, timeout=20) if d.kind == "alert"
    ]
    (alert,) = [a for a in alerts if isinstance(a, pb.Alert)]
    assert alert.alert_id not in _overdue_listing(running)

    deadline = time.monotonic() + 30
    while alert.alert_id not in _overdue_listing(running):
        assert time.monotonic() < deadline, "the alert never became overdue"
        time.sleep(0.5)  # polling the listing, not synchronising on time
    service = running.background.gateway.service
    service.sweep()
    service.sweep()  # (the gateway's own sweep may have come first: once is once)
    escalations = [
        message
        for message in (kinds.decode(d.kind, d.payload) for d in bureau.drain(5, timeout=10))
        if isinstance(message, pb.Alert)
        and message.alert_type == pb.ALERT_TYPE_DISPOSAL_OVERDUE
        and "was not verified by" in message.description
    ]
    assert [alert.alert_id in e.description for e in escalations] == [True]
    bureau.close()
    police.close()
