"""A fifth linkage — the courts (法院) — added without touching the core.

Everything a new adapter brings is defined here, as an adapter package would:
its message kind with a payload type of its own (``court.ruling``,
``courts.v1.CourtRuling``, built from a descriptor as generated code would
be), a route condition (``revocation_requested``), and its linkage (a second
ruling for one case is refused), made known through the public registries
(``kinds.register``, ``views.register_condition``, ``registry.register``). The
configuration is a principal and two routes in the data directory's
policy.toml. A real gateway then carries the bureau's request to revoke
probation (提请撤销缓刑) to the court over RabbitMQ, and the court's ruling back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pika
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from gateway.broker.topology import Names
from gateway.config import Settings
from gateway.domain import kinds, registry, views
from gateway.domain.errors import FailedPrecondition
from gateway.domain.linkage import Accepted, AlertDraft, LinkageContext
from gateway.domain.policy import Policy
from gateway.domain.views import ViewContext
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.testing import enrolment, resident_id
from tests.conftest import AMQP_URL
from tests.e2e.conftest import Running
from tests.helpers import receive_mids

COURTS = "courts"
COURT_RULING = "court.ruling"


def _court_ruling_type() -> type[Message]:
    """``courts.v1.CourtRuling`` — what protoc would generate from courts.proto."""
    file = descriptor_pb2.FileDescriptorProto(
        name="courts/v1/courts.proto",
        package="courts.v1",
        syntax="proto3",
        dependency=[pb.DESCRIPTOR.name],
    )
    ruling = file.message_type.add(name="CourtRuling")
    string = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    for number, name in enumerate(["ruling_id", "unit_code", "decision", "decided_date"], 1):
        ruling.field.add(name=name, number=number, type=string)
    ruling.field.add(
        name="subject",
        number=5,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=".silian.v1.Subject",
    )
    pool = descriptor_pool.Default()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("courts.v1.CourtRuling"))


CourtRuling = _court_ruling_type()


def revocation_requested(message: Message, ctx: ViewContext) -> bool:
    """A request to revoke probation or parole, or to imprison: the court decides."""
    return isinstance(message, pb.RosterChange) and message.change_type in (
        pb.ROSTER_CHANGE_TYPE_REVOCATION_REQUESTED,
        pb.ROSTER_CHANGE_TYPE_IMPRISONMENT_REQUESTED,
    )


class CourtsLinkage:
    """The court rules on a case once: a second ruling with its id is refused."""

    name = COURTS
    kinds = frozenset({COURT_RULING})

    def on_accepted(self, accepted: Accepted, ctx: LinkageContext) -> list[AlertDraft]:
        ruling_id = accepted.message.ruling_id
        earlier = ctx.get(f"ruling/{ruling_id}")
        if earlier is not None:
            raise FailedPrecondition(
                "RULING_EXISTS", f"ruling {ruling_id} was given in message {earlier['mid']}"
            )
        ctx.put(f"ruling/{ruling_id}", {"mid": accepted.mid})
        return []

    def sweep(self, ctx: LinkageContext) -> list[AlertDraft]:
        return []


CONFIGURATION = """
[principals.courts]
display_name = "宝鸡市中级人民法院 Courts"
role = "agency"
may_send = ["court.ruling"]

[[routes]]
id = "roster.courts"
kind = "roster.change"
recipient = "courts"
view = "full"
when = "revocation_requested"
purpose = "裁定 the court rules on a request to revoke probation or parole"

[[routes]]
id = "ruling.judicial"
kind = "court.ruling"
recipient = "judicial"
view = "full"
purpose = "裁定 the court's ruling, for the bureau's case file"
"""


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Iterator[Settings]:
    """The courts adapter registered (for this module only) and configured."""
    with restored(
        kinds._PAYLOAD_TYPES, registry._registered, views.CONDITIONS, views._CONDITION_KINDS
    ):
        kinds.register(COURT_RULING, CourtRuling)
        views.register_condition(
            "revocation_requested", revocation_requested, for_kinds=[kinds.ROSTER_CHANGE]
        )
        registry.register(COURTS, CourtsLinkage)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.policy_file.write_text(Policy.default_text() + CONFIGURATION, encoding="utf-8")
        yield settings
        _delete_courts_queues(settings)


@contextmanager
def restored(*registries: dict[str, Any]) -> Iterator[None]:
    """Put each registry back as it was, in place (other modules hold them by name)."""
    saved = [dict(registry) for registry in registries]
    try:
        yield
    finally:
        for registry, before in zip(registries, saved, strict=True):
            registry.clear()
            registry.update(before)


def _delete_courts_queues(settings: Settings) -> None:
    names = Names(settings.broker_prefix)
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.queue_delete(names.inbox(COURTS))
        channel.queue_delete(names.dlq(COURTS))
    finally:
        connection.close()


def ruling(person: str, ruling_id: str = "(2026)陕03刑更12号") -> Message:
    return CourtRuling(
        ruling_id=ruling_id,
        unit_code="610302",
        decision="撤销缓刑，收监执行",
        decided_date="2026-11-20",
        subject=pb.Subject(resident_id=person),
    )


def test_the_fifth_agency_is_configured_and_its_linkage_loaded(running: Running) -> None:
    gateway = running.background.gateway
    assert COURTS in [linkage.name for linkage in gateway.service.linkages.all]
    assert [r.id for r in gateway.policy.routes_for(COURT_RULING)] == ["ruling.judicial"]


def test_a_revocation_request_reaches_the_court_and_its_ruling_the_bureau(
    running: Running,
) -> None:
    person = resident_id()
    judicial, courts = running.client("judicial"), running.client(COURTS)
    enrolled = judicial.submit(kinds.ROSTER_CHANGE, enrolment(person))
    assert COURTS not in enrolled.recipients
    request = enrolment(person)
    request.change_type = pb.ROSTER_CHANGE_TYPE_REVOCATION_REQUESTED
    request.reason = "再次违反监督管理规定，经警告仍不改正"
    sent = judicial.submit(kinds.ROSTER_CHANGE, request)
    assert COURTS in sent.recipients
    received = receive_mids(courts, [sent.mid])[sent.mid]
    view = kinds.decode(received.kind, received.payload)
    assert isinstance(view, pb.RosterChange)
    assert view.subject.resident_id == person and view.reason == request.reason

    answer = courts.submit(COURT_RULING, ruling(person))
    assert list(answer.recipients) == ["judicial"]
    delivery = receive_mids(judicial, [answer.mid])[answer.mid]
    assert (delivery.kind, delivery.sender) == (COURT_RULING, COURTS)
    assert kinds.decode(COURT_RULING, delivery.payload) == ruling(person)


def test_the_courts_linkage_refuses_a_second_ruling_on_one_case(running: Running) -> None:
    courts = running.client(COURTS)
    person = resident_id()
    courts.submit(COURT_RULING, ruling(person, "(2026)陕03刑更99号"))
    with pytest.raises(grpc.RpcError) as raised:
        courts.submit(COURT_RULING, ruling(person, "(2026)陕03刑更99号"))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "(2026)陕03刑更99号" in str(raised.value.details())
