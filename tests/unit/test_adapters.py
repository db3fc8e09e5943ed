"""Every adapter has one shape, and what it brings — routes, payload rules — adds up to
exactly what the gateway did when the police's and the procuratorate's routes and
every agency's payload rules were part of the core."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

from gateway.demo.run import Parties
from gateway.domain import kinds, registry
from gateway.domain.policy import DEFAULT_FILE, Policy

ADAPTER_FILES = {"policy.toml", "linkage.py", "validation.py", "labels.py", "formats.py", "cli.py"}

#: The shipped policy with the installed adapters' merged.
POLICY = Policy.default()

# Every route of POLICY, kind by kind, in order, as it was before the routes moved
# into the adapters: (id, kind, recipient, view, when, purpose).
ROUTES = [
    (
        "alert.judicial",
        "alert",
        "judicial",
        "full",
        None,
        "监管预警 a supervision alert raised by the linkage rules",
    ),
    (
        "alert.procuratorate",
        "alert",
        "procuratorate",
        "full",
        "supervision_relevant",
        "执法监督 a supervision-relevant alert (new offence, overdue finding)",
    ),
    (
        "alert.disposition.procuratorate",
        "alert.disposition",
        "procuratorate",
        "full",
        "supervision_relevant",
        "执法监督 how the bureau disposed of a supervision-relevant alert",
    ),
    (
        "closure.judicial",
        "inspection.closure",
        "judicial",
        "full",
        None,
        "执法监督 the procuratorate closes or reopens a finding",
    ),
    (
        "finding.judicial",
        "inspection.finding",
        "judicial",
        "full",
        None,
        "执法监督 an inspection finding the bureau must rectify",
    ),
    (
        "rectification.procuratorate",
        "inspection.rectification",
        "procuratorate",
        "full",
        None,
        "执法监督 the bureau's rectification report to the procuratorate",
    ),
    (
        "roster.police",
        "roster.change",
        "police",
        "full",
        None,
        "信息核查 information verification: the police check people under supervision "
        "(公安信息核查联动)",
    ),
    (
        "roster.procuratorate",
        "roster.change",
        "procuratorate",
        "full",
        None,
        "执法监督 enforcement supervision of community corrections by the procuratorate",
    ),
    (
        "roster.ngo",
        "roster.change",
        "ngo",
        "ngo",
        "referred",
        "帮扶服务 partner services for a referred person (pseudonymous)",
    ),
    (
        "roster.detox",
        "roster.change",
        "detox",
        "detox",
        "referred",
        "戒毒帮扶 drug-rehabilitation services for a referred person (pseudonymous)",
    ),
    (
        "service.record.judicial",
        "service.record",
        "judicial",
        "resolved",
        None,
        "帮扶服务 a partner's service record, resolved to the person, for the bureau's case file",
    ),
    (
        "referral.ngo",
        "service.referral",
        "ngo",
        "ngo",
        "not_drug_related",
        "帮扶服务 referral to the NGO's partner services (pseudonymous)",
    ),
    (
        "referral.detox",
        "service.referral",
        "detox",
        "detox",
        "drug_related",
        "戒毒帮扶 referral to the detox centre's services (pseudonymous)",
    ),
    (
        "verification.request.police",
        "verification.request",
        "police",
        "full",
        None,
        "信息核查 a check of named people requested by the bureau",
    ),
    (
        "verification.result.judicial",
        "verification.result",
        "judicial",
        "full",
        None,
        "信息核查 the police's check results, for supervision by the bureau",
    ),
]


def _adapter_packages() -> dict[str, Path]:
    """Each installed linkage's name and the folder of its package."""
    found = {}
    for point in registry.linkage_entry_points():
        package = importlib.import_module(point.module.rpartition(".")[0])
        assert package.__file__ is not None
        found[point.name] = Path(package.__file__).parent
    return found


def test_the_merged_policy_routes_every_kind_as_before() -> None:
    effective = [
        (route.id, route.kind, route.recipient, route.view, route.when, route.purpose)
        for kind in kinds.known_kinds()
        for route in POLICY.routes_for(kind)
    ]
    assert effective == ROUTES
    assert POLICY.adapter_policies == tuple(
        f"adapters.{agency}/policy.toml" for agency in ("police", "procuratorate", "ngo", "detox")
    )


def test_the_core_policy_routes_nothing_to_or_from_an_agency() -> None:
    agencies = set(_adapter_packages())
    core = Policy.load(DEFAULT_FILE, adapters=[])
    principals = [core.principal(agency) for agency in agencies]
    sent_by_agencies = {kind for p in principals if p is not None for kind in p.may_send}
    routes = [route for kind in kinds.known_kinds() for route in core.routes_for(kind)]
    assert [route.id for route in routes] == ["alert.judicial"]
    assert all(route.recipient not in agencies for route in routes)
    assert all(route.kind not in sent_by_agencies for route in routes)


def test_every_adapter_has_the_same_files_and_both_entry_points() -> None:
    commands = {point.name: point.module for point in registry.command_entry_points()}
    for agency, folder in _adapter_packages().items():
        present = {path.name for path in folder.iterdir()}
        assert present >= ADAPTER_FILES, (agency, ADAPTER_FILES - present)
        assert commands[agency] == f"adapters.{agency}.cli"
        assert agency == importlib.import_module(f"adapters.{agency}").AGENCY
        policy = tomllib.loads((folder / "policy.toml").read_text(encoding="utf-8"))
        assert policy["agency"] == agency


def test_the_demo_finds_the_agencies_and_partners_in_the_policy() -> None:
    assert Parties.of(POLICY) == Parties(
        agencies=("detox", "judicial", "ngo", "police", "procuratorate"),
        partners=("detox", "ngo"),
    )


AGENCY_KIND_RULES = """
import sys
from datetime import date
from gateway.domain import kinds, validation
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb

def fields(kind, message):
    found = validation.validate(kind, message, units=Units.default(), today=date(2026, 6, 1))
    return [violation.field for violation in found]

empty = pb.VerificationResult()
print(fields(kinds.VERIFICATION_RESULT, empty))
import adapters.police.linkage  # loading the linkage, as the registry does
from adapters.police import validation as police_rules
police_rules.register()  # again: no effect
print(fields(kinds.VERIFICATION_RESULT, empty))
"""


def test_the_rules_of_what_an_agency_sends_come_with_its_linkage() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", AGENCY_KIND_RULES],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    core_only, with_police = ran.stdout.splitlines()
    assert core_only == "[]"
    assert with_police == str(
        [
            "payload.result_id",
            "payload.subject.resident_id",
            "payload.unit_code",
            "payload.check_type",
            "payload.outcome",
            "payload.observed_at",
        ]
    )
