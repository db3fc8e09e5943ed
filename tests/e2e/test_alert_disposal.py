"""Alert disposal (闭环) end to end, through a real gateway and RabbitMQ: the
bureau disposes of the alerts the gateway raised, step by step; nonsense is
refused with FAILED_PRECONDITION and a reason; the procuratorate gets the
dispositions it supervises; deadlines escalate to both sides once; a
confirmed absconding without its roster change raises a reminder; and a
verification campaign counts answers and alerts when people stay unanswered."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import click
import grpc
import pika
import pytest
from click.testing import CliRunner

from gateway import bootstrap
from gateway.broker.feed import pattern, verify
from gateway.broker.topology import Names
from gateway.cli import main
from gateway.client import AgencyClient
from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.testing import Payloads
from tests.e2e.conftest import Running

VERIFY = pb.DISPOSITION_STEP_VERIFICATION_STARTED
DISPOSE = pb.DISPOSITION_STEP_DISPOSED
CLOSE = pb.DISPOSITION_STEP_CLOSED
REOPEN = pb.DISPOSITION_STEP_REOPENED


@pytest.fixture(scope="module")
def payloads() -> Payloads:
    return Payloads()


@pytest.fixture(scope="module")
def bureau(running: Running) -> Iterator[AgencyClient]:
    judicial = running.client("judicial")
    yield judicial
    judicial.close()


@pytest.fixture(scope="module")
def police(running: Running) -> Iterator[AgencyClient]:
    client = running.client("police")
    yield client
    client.close()


@pytest.fixture(scope="module")
def procuratorate(running: Running) -> Iterator[AgencyClient]:
    client = running.client("procuratorate")
    yield client
    client.close()


def _alerts(deliveries: list[envelope_pb2.Delivery]) -> list[pb.Alert]:
    decoded = [kinds.decode(d.kind, d.payload) for d in deliveries if d.kind == kinds.ALERT]
    return [alert for alert in decoded if isinstance(alert, pb.Alert)]


def _drain_alerts(client: AgencyClient, wanted: Callable[[pb.Alert], bool]) -> list[pb.Alert]:
    """Read the inbox until an alert ``wanted`` came (or 20 s passed); the wanted ones."""
    found: list[pb.Alert] = []
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while not found and datetime.now(UTC) < deadline:
        found = [a for a in _alerts(client.drain(50, timeout=2)) if wanted(a)]
    return found


@pytest.fixture(scope="module")
def raise_alert(
    bureau: AgencyClient, police: AgencyClient, payloads: Payloads
) -> Callable[..., pb.Alert]:
    """Enrol a new person, have the police report a hit, return the alert raised."""

    def make(check_type: pb.CheckType.ValueType = pb.CHECK_TYPE_HOTEL_STAY) -> pb.Alert:
        person = payloads.resident_id("610302")
        bureau.submit(kinds.ROSTER_CHANGE, payloads.enrolment(person))
        if check_type == pb.CHECK_TYPE_HOTEL_STAY:
            hit = payloads.verification_hit(person)  # in Xi'an, no leave: 越界
        else:  # in Baoji: only the alert of the check's own type
            hit = payloads.verification_result(
                person, check_type=check_type, outcome=pb.CHECK_OUTCOME_HIT
            )
        police.submit(kinds.VERIFICATION_RESULT, hit)
        (alert,) = _drain_alerts(bureau, lambda a: a.subject.resident_id == person)[:1]
        return alert

    return make


def disposition(
    alert: pb.Alert, step: int, minutes: float = 0, **fields: object
) -> pb.AlertDisposition:
    """A disposition of ``alert`` at ``minutes`` after it was raised."""
    message = pb.AlertDisposition(
        disposition_id=f"AD-{uuid.uuid4().hex[:8]}",
        alert_id=alert.alert_id,
        alert_type=alert.alert_type,
        unit_code=alert.unit_code,
        step=step,  # type: ignore[arg-type]
        officer="王矫正官",
        **fields,  # type: ignore[arg-type]
    )
    if step == VERIFY:
        message.method = message.method or pb.VERIFICATION_METHOD_VIDEO_CALL
    if step == DISPOSE:
        message.finding = message.finding or pb.DISPOSITION_FINDING_FALSE_ALARM
        message.action = message.action or pb.DISPOSITION_ACTION_NONE
    if step == REOPEN:
        message.reason = message.reason or "复核发现问题"
    at = alert.raised_at.ToDatetime(tzinfo=UTC) + timedelta(minutes=minutes)
    message.occurred_at.FromDatetime(min(at, datetime.now(UTC)))
    return message


def _refused(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    error = raised.value
    return error.code(), error.details()  # type: ignore[attr-defined]


def test_a_disposition_of_an_alert_the_gateway_never_raised_is_refused(
    bureau: AgencyClient, raise_alert: Callable[..., pb.Alert]
) -> None:
    alert = raise_alert()
    alert.alert_id = "no-such-alert"
    code, details = _refused(
        lambda: bureau.submit(kinds.ALERT_DISPOSITION, disposition(alert, VERIFY))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "raised no alert 'no-such-alert'" in details


def test_an_alert_goes_through_its_lifecycle_and_refuses_steps_out_of_order(
    bureau: AgencyClient, raise_alert: Callable[..., pb.Alert]
) -> None:
    alert = raise_alert()
    submit = bureau.submit
    code, details = _refused(lambda: submit(kinds.ALERT_DISPOSITION, disposition(alert, DISPOSE)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "is RAISED; a disposed is allowed only when it is VERIFYING" in details
    for step in (VERIFY, DISPOSE, CLOSE):
        submit(kinds.ALERT_DISPOSITION, disposition(alert, step))
    code, details = _refused(lambda: submit(kinds.ALERT_DISPOSITION, disposition(alert, CLOSE)))
    assert (code, "is already closed" in details) == (grpc.StatusCode.FAILED_PRECONDITION, True)
    for step in (REOPEN, VERIFY, DISPOSE, CLOSE):
        submit(kinds.ALERT_DISPOSITION, disposition(alert, step))
    wrong = disposition(alert, REOPEN)
    wrong.unit_code = "610303"
    code, details = _refused(lambda: submit(kinds.ALERT_DISPOSITION, wrong))
    assert "disposition says otherwise" in details


def test_a_disposition_missing_what_its_step_needs_is_invalid(
    bureau: AgencyClient, raise_alert: Callable[..., pb.Alert]
) -> None:
    alert = raise_alert()
    bare = disposition(alert, DISPOSE)
    bare.ClearField("finding")
    code, details = _refused(lambda: bureau.submit(kinds.ALERT_DISPOSITION, bare))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "payload.finding: is required for DISPOSITION_STEP_DISPOSED" in details


def test_the_procuratorate_gets_dispositions_it_supervises_and_no_others(
    bureau: AgencyClient,
    procuratorate: AgencyClient,
    raise_alert: Callable[..., pb.Alert],
) -> None:
    ordinary = raise_alert()
    bureau.submit(kinds.ALERT_DISPOSITION, disposition(ordinary, VERIFY))
    offence = raise_alert(pb.CHECK_TYPE_NEW_OFFENCE)
    assert offence.alert_type == pb.ALERT_TYPE_NEW_OFFENCE
    receipt = bureau.submit(kinds.ALERT_DISPOSITION, disposition(offence, VERIFY))
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    got: dict[str, pb.AlertDisposition] = {}
    while datetime.now(UTC) < deadline and receipt.mid not in got:
        for delivery in procuratorate.drain(50, timeout=2):
            message = kinds.decode(delivery.kind, delivery.payload)
            if isinstance(message, pb.AlertDisposition):
                got[delivery.mid] = message
    assert [d.alert_id for d in got.values()] == [offence.alert_id]


def test_an_alert_past_its_deadlines_escalates_to_both_sides_once_each(
    running: Running,
    bureau: AgencyClient,
    procuratorate: AgencyClient,
    raise_alert: Callable[..., pb.Alert],
) -> None:
    alert = raise_alert(pb.CHECK_TYPE_DEVICE_SEPARATION)  # 人机分离: verify 4 h, dispose 24 h
    service = running.background.gateway.service
    raised = alert.raised_at.ToDatetime(tzinfo=UTC)
    service.sweep(now=raised + timedelta(hours=3))
    service.sweep(now=raised + timedelta(hours=5))
    service.sweep(now=raised + timedelta(hours=6))
    service.sweep(now=raised + timedelta(hours=25))
    service.sweep(now=raised + timedelta(hours=26))

    def about(a: pb.Alert) -> bool:
        return a.alert_type == pb.ALERT_TYPE_DISPOSAL_OVERDUE and alert.alert_id in a.description

    escalations = _drain_alerts(bureau, about)
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while len(escalations) < 2 and datetime.now(UTC) < deadline:
        escalations += _drain_alerts(bureau, about)
    assert ["not verified by" in a.description for a in escalations] == [True, False]
    assert "not disposed of by" in escalations[1].description
    assert all(a.subject.resident_id == alert.subject.resident_id for a in escalations)
    assert _drain_alerts(procuratorate, about)


def test_confirmed_absconding_without_its_roster_change_raises_a_reminder(
    running: Running,
    bureau: AgencyClient,
    raise_alert: Callable[..., pb.Alert],
    payloads: Payloads,
) -> None:
    forgotten, followed = raise_alert(), raise_alert()
    for alert in (forgotten, followed):
        bureau.submit(kinds.ALERT_DISPOSITION, disposition(alert, VERIFY))
        found = disposition(
            alert,
            DISPOSE,
            finding=pb.DISPOSITION_FINDING_ABSCONDING_CONFIRMED,
            action=pb.DISPOSITION_ACTION_REVOCATION_REQUESTED,
        )
        bureau.submit(kinds.ALERT_DISPOSITION, found)
    absconded = payloads.enrolment(followed.subject.resident_id)
    absconded.change_type = pb.ROSTER_CHANGE_TYPE_ABSCONDED
    absconded.ClearField("term_start_date")
    absconded.ClearField("term_end_date")
    bureau.submit(kinds.ROSTER_CHANGE, absconded)
    service = running.background.gateway.service
    service.sweep(now=datetime.now(UTC) + timedelta(hours=25))
    service.sweep(now=datetime.now(UTC) + timedelta(hours=26))
    reminders = _drain_alerts(bureau, lambda a: a.alert_type == pb.ALERT_TYPE_ROSTER_CHANGE_MISSING)
    assert [a.subject.resident_id for a in reminders] == [forgotten.subject.resident_id]
    assert "ABSCONDED" in reminders[0].description


def test_a_campaign_past_its_deadline_with_people_unanswered_raises_one_alert(
    running: Running, bureau: AgencyClient, police: AgencyClient, payloads: Payloads
) -> None:
    people = [payloads.resident_id("610303") for _ in range(3)]
    for person in people:
        bureau.submit(kinds.ROSTER_CHANGE, payloads.enrolment(person, "610303"))
    request = pb.VerificationRequest(
        request_id=f"VQ-{uuid.uuid4().hex[:6]}",
        unit_code="610303",
        subjects=[pb.Subject(resident_id=p, name="张某") for p in people],
        check_types=[pb.CHECK_TYPE_BIG_DATA],
        reason="大数据核查专项",
    )
    request.response_deadline.FromDatetime(datetime.now(UTC) + timedelta(days=2))
    bureau.submit(kinds.VERIFICATION_REQUEST, request)
    code, details = _refused(lambda: bureau.submit(kinds.VERIFICATION_REQUEST, request))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert f"verification request {request.request_id} was already sent" in details
    for person in people[:2]:
        answer = payloads.verification_result(person, unit="610303")
        answer.request_id = request.request_id
        police.submit(kinds.VERIFICATION_RESULT, answer)
    service = running.background.gateway.service
    service.sweep(now=datetime.now(UTC) + timedelta(days=3))
    service.sweep(now=datetime.now(UTC) + timedelta(days=3, hours=1))
    unanswered = _drain_alerts(
        bureau,
        lambda a: (
            a.alert_type == pb.ALERT_TYPE_CAMPAIGN_UNANSWERED
            and request.request_id in a.description
        ),
    )
    assert len(unanswered) == 1
    assert "1 of 3 people unanswered" in unanswered[0].description


def cli(running: Running, *args: str) -> click.testing.Result:
    settings = running.settings
    return CliRunner().invoke(
        main,
        ["--data-dir", str(settings.data_dir), *args],
        env={"SILIAN_DATABASE_URL": settings.database_url},
        catch_exceptions=False,
    )


def test_bureau_staff_list_and_show_alerts_and_campaigns_from_the_command_line(
    running: Running,
    bureau: AgencyClient,
    police: AgencyClient,
    raise_alert: Callable[..., pb.Alert],
    payloads: Payloads,
) -> None:
    people = [payloads.resident_id("610304") for _ in range(2)]
    for person in people:
        bureau.submit(kinds.ROSTER_CHANGE, payloads.enrolment(person, "610304"))
    request = pb.VerificationRequest(
        request_id="VQ-CLI-1",
        unit_code="610304",
        subjects=[pb.Subject(resident_id=p, name="张某") for p in people],
        check_types=[pb.CHECK_TYPE_VIDEO_CHECK],
        reason="视频点名",
    )
    request.response_deadline.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    bureau.submit(kinds.VERIFICATION_REQUEST, request)
    answer = payloads.verification_result(people[0], unit="610304")
    answer.request_id = request.request_id
    police.submit(kinds.VERIFICATION_RESULT, answer)
    alert = raise_alert()
    bureau.submit(kinds.ALERT_DISPOSITION, disposition(alert, VERIFY))
    listed = cli(running, "alerts", "list", "--unit", "渭滨区", "--state", "verifying")
    assert listed.exit_code == 0, listed.output
    assert alert.alert_id in listed.output and "VERIFYING" in listed.output
    shown = cli(running, "alerts", "show", alert.alert_id)
    assert shown.exit_code == 0, shown.output
    assert "VIDEO_CALL" in shown.output and "王矫正官" in shown.output
    overdue = cli(running, "alerts", "list", "--overdue", "--type", "out_of_bounds")
    assert overdue.exit_code == 0 and alert.alert_id not in overdue.output  # hours to go
    missing = cli(running, "alerts", "show", "no-such-alert")
    assert missing.exit_code == 1
    assert "no alert 'no-such-alert' was raised by this gateway" in missing.output
    wrong_unit = cli(running, "alerts", "list", "--unit", "长安区")
    assert wrong_unit.exit_code == 1 and "neither a configured unit code" in wrong_unit.output
    listed_campaigns = cli(running, "police", "campaigns", "--unit", "陈仓区")
    assert listed_campaigns.exit_code == 0, listed_campaigns.output
    (line,) = [row for row in listed_campaigns.output.splitlines() if "VQ-CLI-1" in row]
    assert "OVERDUE" in line and "50.0%" in line


def test_the_bureau_feed_carries_each_disposition_signed(
    running: Running, bureau: AgencyClient, raise_alert: Callable[..., pb.Alert]
) -> None:
    names = Names(running.settings.broker_prefix)
    connection = pika.BlockingConnection(pika.URLParameters(running.settings.amqp_url))
    channel = connection.channel()
    queue = f"{names.prefix}.test-disposal-{uuid.uuid4().hex[:6]}"
    channel.queue_declare(queue, exclusive=True, auto_delete=True)
    channel.queue_bind(
        queue, names.feed_exchange, routing_key=pattern(kinds.ALERT_DISPOSITION, None)
    )
    alert = raise_alert()
    receipt = bureau.submit(kinds.ALERT_DISPOSITION, disposition(alert, VERIFY))
    found = None
    for method, properties, body in channel.consume(queue, inactivity_timeout=15):
        assert method is not None, "the disposition did not reach the feed"
        channel.basic_ack(method.delivery_tag)
        if properties.message_id == receipt.mid:
            found = (method.routing_key, envelope_pb2.Delivery.FromString(body))
            break
    channel.cancel()
    connection.close()
    assert found is not None
    routing_key, delivery = found
    assert routing_key == f"alert.disposition.{alert.unit_code}.judicial"
    assert verify(delivery, bootstrap.gateway_signer(running.settings).public)
    sent = kinds.decode(delivery.kind, delivery.payload)
    assert isinstance(sent, pb.AlertDisposition) and sent.alert_id == alert.alert_id
