"""Adapter policies: each linkage adapter brings its agency's routes and views in
its own policy.toml, merged into the central policy (gateway.domain.policy)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import pytest

from gateway.domain import kinds, views
from gateway.domain.policy import AdapterPolicy, Policy
from gateway.domain.validation import check_character
from gateway.proto.silian.v1 import payloads_pb2 as pb

CENTRAL = """
version = 1

[principals.judicial]
display_name = "司法局"
role = "agency"
may_send = ["roster.change", "service.referral"]

[principals.ngo]
display_name = "黄丝带"
role = "agency"
may_send = ["service.record"]

[principals.detox]
display_name = "新航驿站"
role = "agency"
may_send = ["service.record"]

[principals.police]
display_name = "公安局"
role = "agency"

[[routes]]
id = "roster.police"
kind = "roster.change"
recipient = "police"
view = "full"
"""

NGO = """
version = 1
agency = "ngo"

[views.partner]
"service.referral" = ["subject", "unit_code", "needs"]

[[routes]]
id = "referral.ngo"
kind = "service.referral"
recipient = "ngo"
view = "partner"
when = "not_drug_related"

[[routes]]
id = "record.judicial"
kind = "service.record"
recipient = "judicial"
view = "full"
"""

DETOX = NGO.replace('agency = "ngo"', 'agency = "detox"').replace(
    """id = "referral.ngo"
kind = "service.referral"
recipient = "ngo\"""",
    """id = "referral.detox"
kind = "service.referral"
recipient = "detox\"""",
)


@pytest.fixture(autouse=True)
def own_view_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Views declared here stay in this test (one name, one declaration per process)."""
    monkeypatch.setattr(views, "VIEWS", dict(views.VIEWS))
    yield


def adapter(text: str, name: str = "adapters.ngo/policy.toml") -> AdapterPolicy:
    return AdapterPolicy(name, text.encode("utf-8"))


def load(tmp_path: Path, central: str, *adapters: AdapterPolicy) -> Policy:
    path = tmp_path / "policy.toml"
    path.write_text(central, encoding="utf-8")
    return Policy.load(path, adapters=list(adapters))


def routes(policy: Policy, kind: str) -> list[tuple[str, str, str, str | None]]:
    return [(r.id, r.recipient, r.view, r.when) for r in policy.routes_for(kind)]


def refusal(tmp_path: Path, central: str, *adapters: AdapterPolicy) -> str:
    with pytest.raises(ValueError) as raised:
        load(tmp_path, central, *adapters)
    return str(raised.value)


# --- merging ------------------------------------------------------------------------


def test_an_adapter_policy_adds_its_routes_after_the_central_ones(tmp_path: Path) -> None:
    policy = load(tmp_path, CENTRAL + "\n", adapter(NGO))
    assert routes(policy, kinds.SERVICE_REFERRAL) == [
        ("referral.ngo", "ngo", "partner", "not_drug_related")
    ]
    assert routes(policy, kinds.SERVICE_RECORD) == [("record.judicial", "judicial", "full", None)]
    assert policy.adapter_policies == ("adapters.ngo/policy.toml",)


def test_an_adapter_policy_applies_only_when_the_central_file_declares_its_agency(
    tmp_path: Path,
) -> None:
    without_ngo = CENTRAL.replace("[principals.ngo]", "[principals.ngo-old]")
    policy = load(tmp_path, without_ngo, adapter(NGO))
    assert routes(policy, kinds.SERVICE_REFERRAL) == []
    assert policy.adapter_policies == ()


def test_adapter_policies_follow_the_order_of_the_principals(tmp_path: Path) -> None:
    policy = load(
        tmp_path,
        CENTRAL,
        adapter(DETOX, "adapters.detox/policy.toml"),
        adapter(NGO),
    )
    assert [r[0] for r in routes(policy, kinds.SERVICE_REFERRAL)] == [
        "referral.ngo",
        "referral.detox",
    ]
    assert policy.adapter_policies == ("adapters.ngo/policy.toml", "adapters.detox/policy.toml")


def test_two_adapters_may_define_one_route_identically(tmp_path: Path) -> None:
    policy = load(tmp_path, CENTRAL, adapter(NGO), adapter(DETOX, "adapters.detox/policy.toml"))
    assert routes(policy, kinds.SERVICE_RECORD) == [("record.judicial", "judicial", "full", None)]


def test_two_adapters_defining_one_route_differently_are_refused(tmp_path: Path) -> None:
    detox = DETOX.replace(
        'recipient = "judicial"\nview = "full"', 'recipient = "judicial"\nview = "pseudonymous"'
    )
    problem = refusal(tmp_path, CENTRAL, adapter(NGO), adapter(detox, "adapters.detox/policy.toml"))
    assert problem.endswith(
        "adapters.detox/policy.toml: route 'record.judicial' differs from the one in "
        "adapters.ngo/policy.toml"
    )


def test_a_central_route_of_the_same_id_replaces_the_adapters(tmp_path: Path) -> None:
    central = (
        CENTRAL
        + """
[[routes]]
id = "referral.ngo"
kind = "service.referral"
recipient = "ngo"
view = "partner"
"""
    )
    policy = load(tmp_path, central, adapter(NGO))
    assert routes(policy, kinds.SERVICE_REFERRAL) == [("referral.ngo", "ngo", "partner", None)]


def test_a_central_view_of_the_same_name_replaces_the_adapters(tmp_path: Path) -> None:
    central = (
        CENTRAL
        + """
[views.partner]
"service.referral" = ["subject", "needs"]
"""
    )
    load(tmp_path, central, adapter(NGO))
    view = views.apply_view("partner", referral(), Recipient())
    assert isinstance(view, pb.ServiceReferral)
    assert not view.unit_code and list(view.needs) == [pb.SERVICE_TYPE_COUNSELLING]


def test_an_adapter_may_route_only_to_its_agency_or_what_it_sends(tmp_path: Path) -> None:
    rogue = (
        NGO
        + """
[[routes]]
id = "roster.ngo-to-police"
kind = "roster.change"
recipient = "police"
view = "full"
"""
    )
    problem = refusal(tmp_path, CENTRAL, adapter(rogue))
    assert problem.endswith(
        "adapters.ngo/policy.toml: route 'roster.ngo-to-police': the ngo adapter may route "
        "only messages to ngo or of kinds ngo may send"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (NGO.replace('agency = "ngo"\n', ""), "agency must name the principal it is about"),
        ("principals = 1\n" + NGO, "the adapter policy has unknown keys principals"),
        (NGO.replace('view = "full"', 'view = "whole"'), "route 'record.judicial': unknown view"),
        (NGO.replace("version = 1", "version = 3"), "version must be 1, got 3"),
    ],
)
def test_a_wrong_adapter_policy_is_refused_naming_it(
    tmp_path: Path, text: str, problem: str
) -> None:
    message = refusal(tmp_path, CENTRAL, adapter(text))
    assert message.startswith(f"policy file {tmp_path / 'policy.toml'}: adapters.ngo/policy.toml: ")
    assert problem in message


def test_the_digest_covers_every_merged_file(tmp_path: Path) -> None:
    policy = load(tmp_path, CENTRAL, adapter(NGO))
    listing = (
        f"{hashlib.sha256(CENTRAL.encode()).hexdigest()}  policy.toml\n"
        f"{hashlib.sha256(NGO.encode()).hexdigest()}  adapters.ngo/policy.toml\n"
    )
    assert policy.digest == hashlib.sha256(listing.encode()).hexdigest()
    changed = load(tmp_path, CENTRAL, adapter(NGO + "\n# reviewed\n"))
    assert changed.digest != policy.digest
    assert load(tmp_path, CENTRAL).digest == hashlib.sha256(CENTRAL.encode()).hexdigest()


def test_the_installed_partner_adapters_bring_their_policies() -> None:
    policy = Policy.default()
    assert {"adapters.ngo/policy.toml", "adapters.detox/policy.toml"} <= set(
        policy.adapter_policies
    )
    assert routes(policy, kinds.SERVICE_REFERRAL) == [
        ("referral.ngo", "ngo", "ngo", "not_drug_related"),
        ("referral.detox", "detox", "detox", "drug_related"),
    ]


# --- declared views -------------------------------------------------------------------

TODAY = date(2026, 6, 1)
BODY = "61030219900615123"
ID = BODY + check_character(BODY)


class Recipient:
    recipient = "ngo"
    today = TODAY

    def pseudonym(self, resident_id: str) -> str:
        return "P-" + hashlib.sha256(resident_id.encode()).hexdigest()[:8]

    def is_referred(self, resident_id: str) -> bool:
        return True

    def resolve_pseudonyms(self, pseudonyms: Sequence[str]) -> dict[str, str]:
        return {}


def referral() -> pb.ServiceReferral:
    return pb.ServiceReferral(
        referral_id="REF-7",
        subject=pb.Subject(resident_id=ID, name="张三", address="渭滨区经二路1号"),
        unit_code="610302",
        needs=[pb.SERVICE_TYPE_COUNSELLING],
        drug_related=False,
        offence="盗窃罪",
        notes="家庭困难",
    )


def test_a_declared_view_keeps_only_the_listed_fields_and_pseudonymizes_people(
    tmp_path: Path,
) -> None:
    load(tmp_path, CENTRAL, adapter(NGO))
    ctx = Recipient()
    view = views.apply_view("partner", referral(), ctx)
    assert view == pb.ServiceReferral(
        subject=pb.Subject(pseudonym=ctx.pseudonym(ID), age_band="30-39"),
        unit_code="610302",
        needs=[pb.SERVICE_TYPE_COUNSELLING],
    )


@pytest.mark.parametrize(
    ("view", "problem"),
    [
        ('"service.referral" = ["subject", "offence"]', "offence may not be shown"),
        ('"service.referral" = ["subject", "nickname"]', "service.referral has no fields nickname"),
        ('"service.referal" = ["subject"]', "unknown message kind 'service.referal'"),
        ('"service.referral" = "subject"', "service.referral must be a list of field names"),
        ('"roster.change" = ["subject"]', "view 'partner' does not list what to keep of"),
    ],
)
def test_a_wrong_declared_view_is_refused(tmp_path: Path, view: str, problem: str) -> None:
    text = NGO.replace('"service.referral" = ["subject", "unit_code", "needs"]', view)
    assert problem in refusal(tmp_path, CENTRAL, adapter(text))


def test_a_declared_view_may_not_take_a_built_in_name(tmp_path: Path) -> None:
    central = CENTRAL + '\n[views.full]\n"service.referral" = ["needs"]\n'
    assert "view 'full' is built in" in refusal(tmp_path, central)


def test_one_view_name_is_declared_one_way_per_process(tmp_path: Path) -> None:
    load(tmp_path, CENTRAL, adapter(NGO))
    other = NGO.replace('["subject", "unit_code", "needs"]', '["subject", "needs"]')
    assert "declared differently by another policy" in refusal(tmp_path, CENTRAL, adapter(other))
