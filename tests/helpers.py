"""Helpers of the tests alone: enrolling someone, reading an inbox, a commit
handler for jobs. (What the demo and the benchmarks share too — gateways,
payloads — is in ``gateway.testing``.)"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import bootstrap
from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security import issue_token, kid_for, pseudonyms, public_raw
from gateway.testing import enrolment, resident_id


def bearer(
    key: Ed25519PrivateKey, issuer: str, audience: str, **options: Any
) -> list[tuple[str, str]]:
    """Call metadata with a token of ``issuer`` signed by ``key`` (``options``:
    ``issue_token``'s, e.g. ``ttl_seconds``, ``now``)."""
    token = issue_token(key, kid_for(public_raw(key)), issuer=issuer, audience=audience, **options)
    return [("authorization", f"Bearer {token}")]


def enrolled(judicial: AgencyClient, unit: str = "610302") -> str:
    """The resident ID of a person the bureau just enrolled (police results and
    partner records must name someone on the roster)."""
    person = resident_id(unit)
    judicial.submit(kinds.ROSTER_CHANGE, enrolment(person, unit))
    return person


def receive_mids(
    client: AgencyClient, mids: Iterable[str], timeout: float = 15.0, ack: bool = True
) -> dict[str, envelope_pb2.Delivery]:
    """Read the inbox (through the agency side's reader, which checks the gateway's
    signature of each delivery when the client has the gateway's keys) until every
    mid in ``mids`` arrived (or ``timeout``); returns every delivery read, by mid,
    and acknowledges them unless ``ack`` is False."""
    wanted = set(mids)
    found: dict[str, envelope_pb2.Delivery] = {}
    with client.inbox(timeout=timeout) as inbox:
        for delivery in inbox:
            if ack:
                inbox.acknowledge(delivery)
            found[delivery.mid] = delivery
            if wanted <= set(found):
                break
        inbox.flush()
    return found


def known_as(settings: Settings, recipient: str, sender: str, mid: str) -> str:
    """The id under which ``recipient``, which gets a minimized view, knows
    message ``mid`` of ``sender`` (its delivery's ``mid``)."""
    key = bootstrap.pseudonym_keys(settings)(recipient)
    return pseudonyms.delivery_mid(key, sender, mid)


class JobsOnly:
    """A CommitHandler for a group committer that only runs jobs (delivery
    records, sweeps): messages it is given are stored without linkages."""

    def stage(self, session: object, pending: object, state: object) -> list[object]:
        return []

    def receipt(self, pending: object, audit_index: int) -> bytes:
        return b""

    def rejection(self, pending: object, error: Exception) -> object:
        raise AssertionError(f"nothing is refused here: {error}")

    def committed(self, messages: object) -> None:
        pass
