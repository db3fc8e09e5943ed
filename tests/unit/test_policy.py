from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gateway.domain import kinds
from gateway.domain.policy import Policy, Principal

DEFAULT = Policy.default()

# (recipient, view, condition) of every default route, per kind (DESIGN §2).
DEFAULT_ROUTES = {
    kinds.ROSTER_CHANGE: [
        ("police", "full", None),
        ("procuratorate", "full", None),
        ("ngo", "ngo", "referred"),
        ("detox", "detox", "referred"),
    ],
    kinds.VERIFICATION_REQUEST: [("police", "full", None)],
    kinds.VERIFICATION_RESULT: [("judicial", "full", None)],
    kinds.INSPECTION_FINDING: [("judicial", "full", None)],
    kinds.INSPECTION_RECTIFICATION: [("procuratorate", "full", None)],
    kinds.INSPECTION_CLOSURE: [("judicial", "full", None)],
    kinds.SERVICE_REFERRAL: [
        ("ngo", "ngo", "not_drug_related"),
        ("detox", "detox", "drug_related"),
    ],
    kinds.SERVICE_RECORD: [("judicial", "resolved", None)],
    kinds.ALERT: [
        ("judicial", "full", None),
        ("procuratorate", "full", "supervision_relevant"),
    ],
    kinds.ALERT_DISPOSITION: [("procuratorate", "full", "supervision_relevant")],
}

DEFAULT_SENDERS = {
    "judicial": {
        kinds.ROSTER_CHANGE,
        kinds.VERIFICATION_REQUEST,
        kinds.INSPECTION_RECTIFICATION,
        kinds.SERVICE_REFERRAL,
        kinds.ALERT_DISPOSITION,
    },
    "police": {kinds.VERIFICATION_RESULT},
    "procuratorate": {kinds.INSPECTION_FINDING, kinds.INSPECTION_CLOSURE},
    "ngo": {kinds.SERVICE_RECORD},
    "detox": {kinds.SERVICE_RECORD},
    "gateway": {kinds.ALERT},
    "auditor": set(),
}


def test_default_routes_follow_the_design() -> None:
    assert sorted(DEFAULT_ROUTES) == kinds.known_kinds()
    for kind, expected in DEFAULT_ROUTES.items():
        routes = DEFAULT.routes_for(kind)
        assert [(r.recipient, r.view, r.when) for r in routes] == expected, kind
        assert all(route.kind == kind for route in routes)


def test_default_principals_and_what_each_may_send() -> None:
    assert [p.id for p in DEFAULT.principals()] == list(DEFAULT_SENDERS)
    for principal_id, allowed in DEFAULT_SENDERS.items():
        for kind in kinds.known_kinds():
            assert DEFAULT.may_send(principal_id, kind) is (kind in allowed), (principal_id, kind)


def test_default_roles() -> None:
    roles = {p.id: p.role for p in DEFAULT.principals()}
    assert roles == {
        "judicial": "agency",
        "police": "agency",
        "procuratorate": "agency",
        "ngo": "agency",
        "detox": "agency",
        "gateway": "gateway",
        "auditor": "auditor",
    }


def test_a_principal_is_looked_up_by_id() -> None:
    assert DEFAULT.principal("gateway") == Principal(
        "gateway", "四联 Silian gateway", "gateway", frozenset({kinds.ALERT})
    )
    assert DEFAULT.principal("court") is None


def test_an_unknown_sender_may_send_nothing() -> None:
    assert not DEFAULT.may_send("court", kinds.ROSTER_CHANGE)


def test_a_kind_without_routes_has_none() -> None:
    assert DEFAULT.routes_for("court.notice") == []


def test_the_digest_names_the_exact_file_bytes(tmp_path: Path) -> None:
    text = Policy.default_text()
    copy = tmp_path / "policy.toml"
    copy.write_text(text, encoding="utf-8")
    assert Policy.load(copy, adapters=[]).digest == hashlib.sha256(text.encode()).hexdigest()
    assert Policy.load(copy).digest == DEFAULT.digest
    copy.write_text(text + "\n# reviewed 2025-06-01\n", encoding="utf-8")
    assert Policy.load(copy).digest != DEFAULT.digest


def test_the_default_text_documents_how_referrals_are_addressed() -> None:
    assert "How a referral is addressed" in Policy.default_text()


# --- loading errors ---------------------------------------------------------------
# A central file alone (no adapter policies merged): the installed police adapter
# would route what this file's police may not send.

BASE = """
version = 1

[principals.judicial]
display_name = "司法局"
role = "agency"
may_send = ["roster.change"]

[principals.police]
display_name = "公安局"
role = "agency"

[principals.gateway]
display_name = "gateway"
role = "gateway"
may_send = ["alert"]

[principals.auditor]
display_name = "审计"
role = "auditor"
"""


def route(
    route_id: str = "r1",
    kind: str = "roster.change",
    recipient: str = "police",
    view: str = "full",
    extra: str = "",
) -> str:
    return f"""
[[routes]]
id = "{route_id}"
kind = "{kind}"
recipient = "{recipient}"
view = "{view}"
{extra}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_minimal_policy_loads(tmp_path: Path) -> None:
    policy = Policy.load(write(tmp_path, BASE + route(extra='when = "referred"')), adapters=[])
    [only] = policy.routes_for(kinds.ROSTER_CHANGE)
    assert (only.id, only.recipient, only.view, only.when) == ("r1", "police", "full", "referred")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (BASE + route(view="minimal"), "route 'r1': unknown view 'minimal' (known: full, "),
        (BASE + route(extra='when = "weekday"'), "route 'r1': unknown condition 'weekday'"),
        (
            BASE + route(extra='when = "supervision_relevant"'),
            "route 'r1': condition 'supervision_relevant' does not apply to roster.change",
        ),
        (BASE + route(kind="roster.chnage"), "route 'r1': unknown message kind 'roster.chnage'"),
        (BASE + route(recipient="court"), "route 'r1': recipient 'court' is not a principal"),
        (BASE + route(recipient="auditor"), "route 'r1': recipient 'auditor' has role 'auditor'"),
        (BASE + route(recipient="gateway"), "route 'r1': recipient 'gateway' has role 'gateway'"),
        (BASE + route() + route(recipient="judicial"), "route 'r1' is defined more than once"),
        (
            BASE + route() + route("r2"),
            "route 'r2': 'police' already receives roster.change by route 'r1'",
        ),
        (BASE + route(extra='recipents = ["ngo"]'), "route 'r1' has unknown keys recipents"),
        (BASE + route().replace('view = "full"', ""), "route 'r1': view is required"),
        (BASE + "[[routes]]\nkind = 'alert'\n", "routes[0]: id is required"),
        (
            BASE.replace('may_send = ["roster.change"]', 'may_send = ["roster"]'),
            "principal 'judicial': unknown message kind 'roster'",
        ),
        (
            BASE.replace('role = "agency"', 'role = "partner"', 1),
            "principal 'judicial': role must be one of agency, auditor, gateway",
        ),
        (
            BASE.replace('role = "auditor"', 'role = "auditor"\nmay_send = ["alert"]'),
            "principal 'auditor': an auditor may not send messages",
        ),
        (
            BASE.replace("[principals.police]", "[principals.'police.city']"),
            "principal 'police.city': id must be",
        ),
        (
            BASE.replace('display_name = "公安局"', ""),
            "principal 'police': display_name is required",
        ),
        (BASE.replace("version = 1", "version = 2"), "version must be 1, got 2"),
        (BASE.replace("version = 1", ""), "version must be 1, got None"),
        ("owner = 'x'\n" + BASE, "the policy has unknown keys owner"),
        (BASE + "\n[[routes]\n", "Expected ']]' at the end of an array declaration"),
        ("version = 1\n", "needs at least one [principals.<id>] table"),
    ],
)
def test_a_wrong_policy_is_refused_naming_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as raised:
        Policy.load(path, adapters=[])
    assert str(raised.value).startswith(f"policy file {path}: ")
    assert problem in str(raised.value)


def test_a_policy_may_use_a_kind_an_adapter_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kinds, "_PAYLOAD_TYPES", dict(kinds._PAYLOAD_TYPES))
    kinds.register("court.notice", kinds.payload_type(kinds.INSPECTION_CLOSURE))
    policy = Policy.load(write(tmp_path, BASE + route(kind="court.notice")), adapters=[])
    assert [r.recipient for r in policy.routes_for("court.notice")] == ["police"]
