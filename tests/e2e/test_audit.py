"""silian.v1.Audit on a real gateway (SQLite and PostgreSQL): an auditor proves
a receipt is in a signed checkpoint, checks that checkpoints extend each other,
lists a message's entries and a person's access history; partner agencies get
only what is theirs; `silian audit export` and `verify` work on its log."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import replace

import grpc
import pytest
from click.testing import CliRunner
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from gateway.audit import merkle
from gateway.audit.checkpoints import audit_signer
from gateway.audit.note import Checkpoint, open_checkpoint
from gateway.cli import main
from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import audit_pb2, audit_pb2_grpc, envelope_pb2
from gateway.testing import enrolment, referral, resident_id, verification_hit
from tests.e2e.conftest import Running
from tests.helpers import enrolled, known_as, receive_mids

Clients = Callable[[str], AgencyClient]


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    """Checkpoint after every entry, so tests need not wait long for one."""
    return replace(settings, checkpoint_every_entries=1, checkpoint_interval_seconds=0.2)


class Caller:
    """An Audit stub calling as one principal."""

    def __init__(self, running: Running, principal: str) -> None:
        self._client = running.client(principal)
        self.stub = audit_pb2_grpc.AuditStub(self._client.channel)

    def __getattr__(self, name: str) -> Callable[..., object]:
        method = getattr(self.stub, name)
        return lambda request: method(request, metadata=self._client.metadata(), timeout=15)

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def as_principal(running: Running) -> Iterator[Callable[[str], Caller]]:
    opened: list[Caller] = []

    def make(principal: str) -> Caller:
        opened.append(Caller(running, principal))
        return opened[-1]

    yield make
    for caller in opened:
        caller.close()


def _checkpoint_covering(running: Running, auditor: Caller, index: int) -> Checkpoint:
    """The newest signed checkpoint, once the gateway's checkpointer covers ``index``."""
    assert running.background.checkpointer.wait_for(index + 1, timeout=20)
    response = auditor.GetCheckpoint(audit_pb2.GetCheckpointRequest())
    verifier = audit_signer(running.settings).verifier  # what auditors get out of band
    checkpoint = open_checkpoint(response.checkpoint.note, verifier)
    assert checkpoint.size == response.checkpoint.tree_size > index
    assert checkpoint.root_hash == response.checkpoint.root_hash
    return checkpoint


def test_auditor_proves_a_receipt_is_in_a_signed_checkpoint(
    running: Running, client: Clients, as_principal: Callable[[str], Caller]
) -> None:
    receipt = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment())
    auditor = as_principal("auditor")
    checkpoint = _checkpoint_covering(running, auditor, receipt.audit_index)
    proof = auditor.GetInclusionProof(
        audit_pb2.GetInclusionProofRequest(
            leaf_index=receipt.audit_index, tree_size=checkpoint.size
        )
    )
    merkle.verify_inclusion(
        receipt.audit_index,
        checkpoint.size,
        merkle.leaf_hash(proof.entry),
        list(proof.hashes),
        checkpoint.root_hash,
    )
    entry = json.loads(proof.entry)
    assert (entry["event"], entry["actor"], entry["mid"]) == ("accepted", "judicial", receipt.mid)
    assert entry["detail"]["sha256"] == receipt.payload_sha256


def test_later_checkpoints_are_consistent_with_earlier_ones(
    running: Running, client: Clients, as_principal: Callable[[str], Caller]
) -> None:
    auditor = as_principal("auditor")
    first = client("police").submit(
        kinds.VERIFICATION_RESULT, verification_hit(enrolled(client("judicial")))
    )
    old = _checkpoint_covering(running, auditor, first.audit_index)
    second = client("police").submit(
        kinds.VERIFICATION_RESULT, verification_hit(enrolled(client("judicial")))
    )
    new = _checkpoint_covering(running, auditor, second.audit_index)
    proof = auditor.GetConsistencyProof(
        audit_pb2.GetConsistencyProofRequest(first_tree_size=old.size, second_tree_size=new.size)
    )
    merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, list(proof.hashes))


def test_auditor_lists_the_entries_of_a_message(
    client: Clients, as_principal: Callable[[str], Caller]
) -> None:
    receipt = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment())
    receive_mids(client("police"), [receipt.mid])
    response = as_principal("auditor").ListEntries(audit_pb2.ListEntriesRequest(mid=receipt.mid))
    seen = {(e.event, e.detail.get("recipient") or e.actor) for e in response.entries}
    assert {("accepted", "judicial"), ("routed", "police"), ("routed", "procuratorate")} <= seen
    assert ("acknowledged", "police") in seen
    assert all(merkle.leaf_hash(e.entry) for e in response.entries)


def test_subject_access_log_shows_who_received_a_person_and_why(
    running: Running, client: Clients, as_principal: Callable[[str], Caller]
) -> None:
    person = resident_id()
    roster = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment(person))
    sent = client("judicial").submit(kinds.SERVICE_REFERRAL, referral(person))
    receive_mids(client("police"), [roster.mid])
    known = known_as(running.settings, "ngo", "judicial", sent.mid)
    delivery = receive_mids(client("ngo"), [known])[known]
    pseudonym = kinds.decode(delivery.kind, delivery.payload).subject.pseudonym
    auditor = as_principal("auditor")
    by_id = auditor.SubjectAccessLog(audit_pb2.SubjectAccessLogRequest(subject=person))
    by_pseudonym = auditor.SubjectAccessLog(audit_pb2.SubjectAccessLogRequest(subject=pseudonym))
    assert by_id == by_pseudonym
    accesses = {(a.mid, a.recipient): a for a in by_id.accesses}
    police = accesses[(roster.mid, "police")]
    assert (police.route_id, police.view, police.sender) == ("roster.police", "full", "judicial")
    assert police.purpose and police.routed.index and police.acknowledged.index
    ngo = accesses[(sent.mid, "ngo")]
    assert (ngo.route_id, ngo.view) == ("referral.ngo", "ngo")
    assert ngo.delivered.time.seconds
    assert (roster.mid, "procuratorate") in accesses
    assert (sent.mid, "detox") not in accesses


def _status(call: Callable[[], object]) -> tuple[grpc.StatusCode, list[str]]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    status = rpc_status.from_call(raised.value)  # type: ignore[arg-type]
    fields = []
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return raised.value.code(), fields  # type: ignore[attr-defined]


def test_a_partner_agency_may_not_list_entries(as_principal: Callable[[str], Caller]) -> None:
    police = as_principal("police")
    code, _ = _status(lambda: police.ListEntries(audit_pb2.ListEntriesRequest()))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = _status(
        lambda: police.SubjectAccessLog(audit_pb2.SubjectAccessLogRequest(subject="P-X"))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_a_partner_agency_proves_its_own_receipt_but_no_one_elses(
    running: Running, client: Clients, as_principal: Callable[[str], Caller]
) -> None:
    mine = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment())
    theirs = client("police").submit(
        kinds.VERIFICATION_RESULT, verification_hit(enrolled(client("judicial")))
    )
    judicial = as_principal("judicial")
    _checkpoint_covering(running, as_principal("auditor"), theirs.audit_index)
    size = judicial.GetCheckpoint(audit_pb2.GetCheckpointRequest()).checkpoint.tree_size
    proof = judicial.GetInclusionProof(
        audit_pb2.GetInclusionProofRequest(leaf_index=mine.audit_index, tree_size=size)
    )
    assert json.loads(proof.entry)["mid"] == mine.mid
    code, fields = _status(
        lambda: judicial.GetInclusionProof(
            audit_pb2.GetInclusionProofRequest(leaf_index=theirs.audit_index, tree_size=size)
        )
    )
    assert (code, fields) == (grpc.StatusCode.PERMISSION_DENIED, ["leaf_index"])


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        (
            "GetInclusionProof",
            audit_pb2.GetInclusionProofRequest(leaf_index=5, tree_size=5),
            "leaf_index",
        ),
        (
            "GetInclusionProof",
            audit_pb2.GetInclusionProofRequest(leaf_index=0, tree_size=0),
            "tree_size",
        ),
        (
            "GetConsistencyProof",
            audit_pb2.GetConsistencyProofRequest(first_tree_size=5, second_tree_size=4),
            "first_tree_size",
        ),
        (
            "GetConsistencyProof",
            audit_pb2.GetConsistencyProofRequest(first_tree_size=0, second_tree_size=4),
            "first_tree_size",
        ),
        ("ListEntries", audit_pb2.ListEntriesRequest(page_token="9" * 30), "page_token"),
        ("ListEntries", audit_pb2.ListEntriesRequest(page_token="9" * 5000), "page_token"),
        ("ListEntries", audit_pb2.ListEntriesRequest(page_token="²"), "page_token"),
    ],
)
def test_impossible_proof_requests_are_invalid_arguments_naming_the_field(
    as_principal: Callable[[str], Caller], method: str, request_: object, field: str
) -> None:
    auditor = as_principal("auditor")
    code, fields = _status(lambda: getattr(auditor, method)(request_))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, [field])


def test_reflection_lists_the_audit_service(running: Running) -> None:
    with grpc.insecure_channel(running.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        services = {s.name for r in responses for s in r.list_services_response.service}
    assert "silian.v1.Audit" in services


def test_an_operator_exports_and_an_auditor_verifies_offline(
    running: Running, client: Clients, tmp_path: object
) -> None:
    receipt: envelope_pb2.Receipt = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment())
    settings = running.settings
    env = {"SILIAN_DATABASE_URL": settings.database_url}
    runner = CliRunner()

    def silian(*args: str) -> str:
        result = runner.invoke(main, ["--data-dir", str(settings.data_dir), *args], env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    out = f"{tmp_path}/bundle"
    silian("audit", "export", "--out", out)
    key = silian("audit", "key").strip()
    assert "OK:" in runner.invoke(main, ["audit", "verify", out, "--key", key]).stdout
    proof = json.loads(silian("audit", "proof", "inclusion", str(receipt.audit_index)))
    checkpoint = open_checkpoint(proof["checkpoint"], audit_signer(settings).verifier)
    merkle.verify_inclusion(
        receipt.audit_index,
        proof["tree_size"],
        merkle.leaf_hash(base64.b64decode(proof["entry"])),
        [base64.b64decode(h) for h in proof["hashes"]],
        checkpoint.root_hash,
    )
