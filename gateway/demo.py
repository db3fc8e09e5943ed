"""``silian demo``: one round trip through the four linkages' backbone.

Starts a gateway on the data directory (SQLite unless SILIAN_DATABASE_URL says
otherwise) and the local RabbitMQ, registers the principals with fresh keys,
and sends real signed messages over gRPC: a roster enrolment to the police and
the procuratorate, a referral to the NGO (which sees only a pseudonym), and a
police verification result back to the bureau.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from gateway import bootstrap, kinds
from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.provision import ensure_principals
from gateway.rpc.silian.v1 import envelope_pb2, exchange_pb2
from gateway.rpc.silian.v1 import payloads_pb2 as pb
from gateway.runner import BackgroundGateway
from gateway.validation import check_character


@dataclass
class _Sent:
    sender: str
    kind: str
    receipt: envelope_pb2.Receipt


def _subject(rng: random.Random) -> pb.Subject:
    birth = date(1970, 1, 1) + timedelta(days=rng.randrange(365 * 35))
    first17 = f"610302{birth:%Y%m%d}{rng.randrange(500) * 2 + 1:03d}"  # odd: male
    return pb.Subject(
        resident_id=first17 + check_character(first17),
        name="张某某",
        gender=pb.GENDER_MALE,
        birth_date=birth.isoformat(),
        address="宝鸡市渭滨区经二路",
    )


def _script(rng: random.Random, today: date) -> list[tuple[str, str, Message]]:
    subject = _subject(rng)
    enrolment = pb.RosterChange(
        change_id=f"RC-{rng.randrange(10**6):06d}",
        change_type=pb.ROSTER_CHANGE_TYPE_ENROLMENT,
        subject=subject,
        unit_code="610302",
        category=pb.CORRECTION_CATEGORY_PROBATION,
        supervision_level=pb.SUPERVISION_LEVEL_ORDINARY,
        effective_date=today.isoformat(),
        term_start_date=today.isoformat(),
        term_end_date=(today + timedelta(days=365)).isoformat(),
        offence="危险驾驶罪",
        officer="李警官",
    )
    referral = pb.ServiceReferral(
        referral_id=f"REF-{rng.randrange(10**6):06d}",
        subject=subject,
        unit_code="610302",
        needs=[pb.SERVICE_TYPE_COUNSELLING, pb.SERVICE_TYPE_VOCATIONAL_TRAINING],
        offence="危险驾驶罪",
        notes="家庭困难",
    )
    hit = pb.VerificationResult(
        result_id=f"VR-{rng.randrange(10**6):06d}",
        subject=pb.Subject(resident_id=subject.resident_id, name=subject.name),
        unit_code="610302",
        check_type=pb.CHECK_TYPE_HOTEL_STAY,
        outcome=pb.CHECK_OUTCOME_HIT,
        place="西安市雁塔区某酒店",
        place_region_code="610113",
        police_reference="GA-2026-0001",
    )
    hit.observed_at.FromDatetime(datetime.now(UTC) - timedelta(hours=3))
    return [
        ("judicial", kinds.ROSTER_CHANGE, enrolment),
        ("judicial", kinds.SERVICE_REFERRAL, referral),
        ("police", kinds.VERIFICATION_RESULT, hit),
    ]


def run_demo(settings: Settings, console: Console) -> int:
    """Run the round trip; 0 if every message reached every recipient."""
    console.print(f"[bold]Silian demo[/bold] — data directory {settings.data_dir.resolve()}")
    store = bootstrap.open_store(settings)
    private_keys = ensure_principals(settings, store, bootstrap.load_policy(settings))
    rng = random.Random()
    with BackgroundGateway(settings) as running:
        console.print(
            f"gateway serving on {running.target} "
            f"({store.engine.url.get_backend_name()}, RabbitMQ {settings.amqp_url.split('@')[-1]})"
        )
        clients = {
            agency: AgencyClient.connect(
                running.target, agency=agency, key=key, gateway_id=settings.gateway_id
            )
            for agency, key in private_keys.items()
        }
        sent = [
            _Sent(sender, kind, clients[sender].submit(kind, message))
            for sender, kind, message in _script(rng, date.today())
        ]
        expected: dict[str, int] = {}
        for item in sent:
            for recipient in item.receipt.recipients:
                expected[recipient] = expected.get(recipient, 0) + 1
        received = {
            agency: clients[agency].drain(count, timeout=15) for agency, count in expected.items()
        }
        statuses = [clients[item.sender].status(item.receipt.mid) for item in sent]
        for client in clients.values():
            client.close()
    _show(console, sent, received, statuses)
    complete = all(len(received[a]) == n for a, n in expected.items()) and all(
        r.state == exchange_pb2.DELIVERY_STATE_ACKNOWLEDGED for s in statuses for r in s.recipients
    )
    console.print(
        "[green]every message delivered and acknowledged[/green]"
        if complete
        else "[red]some deliveries are missing[/red]"
    )
    return 0 if complete else 1


def _show(
    console: Console,
    sent: list[_Sent],
    received: dict[str, list[envelope_pb2.Delivery]],
    statuses: list[exchange_pb2.GetStatusResponse],
) -> None:
    table = Table("kind", "from", "mid", "audit #", "recipient", "state", title="Messages")
    for item, status in zip(sent, statuses, strict=True):
        for recipient in status.recipients:
            table.add_row(
                item.kind,
                item.sender,
                item.receipt.mid[:8],
                str(item.receipt.audit_index),
                recipient.recipient,
                exchange_pb2.DeliveryState.Name(recipient.state).removeprefix("DELIVERY_STATE_"),
            )
    console.print(table)
    views = Table("recipient", "kind", "what the recipient sees", title="Recipient views")
    for agency, deliveries in sorted(received.items()):
        for delivery in deliveries:
            view = kinds.decode(delivery.kind, delivery.payload)
            subject = getattr(view, "subject", None)
            seen = (
                f"{subject.name or '-'} {subject.resident_id or subject.pseudonym} "
                f"{subject.age_band}".strip()
                if subject is not None
                else ""
            )
            views.add_row(agency, delivery.kind, seen)
    console.print(views)
