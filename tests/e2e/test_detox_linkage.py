"""The detox linkage (新航驿站) end to end, through a real gateway and RabbitMQ:
only drug-related referrals reach the detox centre, under pseudonyms of its
own; its activity ledger (GB18030 CSV with bad rows, English-headed XLSX)
becomes signed records; the bureau receives them with the people resolved."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from gateway.cli import main
from gateway.client import AgencyClient
from gateway.client.connectors import Outgoing
from gateway.domain import kinds
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.testing import referral, resident_id
from tests.e2e.conftest import Running
from tests.helpers import known_as, receive_mids

ERIC = resident_id("610305")  # drug-related
FRANK = resident_id("610305")  # drug-related
GRACE = resident_id("610326")  # not drug-related: the NGO's
HEADER = (
    "活动编号,对象编号,所属区县,活动类型,活动形式,活动日期,活动时长(分钟),参与人数,"
    "活动效果,负责民警\n"
)
YESTERDAY = (date.today() - timedelta(days=1)).isoformat()
TOMORROW = (date.today() + timedelta(days=2)).isoformat()


def cli(running: Running, *args: str) -> click.testing.Result:
    settings = running.settings
    return CliRunner().invoke(
        main,
        ["--data-dir", str(settings.data_dir), *args, "--target", running.target],
        env={"SILIAN_DATABASE_URL": settings.database_url},
        catch_exceptions=False,
    )


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def record_mid(record_id: str) -> str:
    """The message id the connector gives record ``record_id`` of the detox centre."""
    outgoing = Outgoing(kinds.SERVICE_RECORD, pb.ServiceRecord(), f"活动编号 {record_id}")
    return outgoing.mid("detox")


@pytest.fixture(scope="module")
def bureau(running: Running) -> Iterator[AgencyClient]:
    """The bureau refers Eric and Frank (drug-related) and Grace (not)."""
    judicial = running.client("judicial")
    for person, drug_related in ((ERIC, True), (FRANK, True), (GRACE, False)):
        message = referral(person)
        message.unit_code = "610305"
        message.drug_related = drug_related
        message.needs[:] = [pb.SERVICE_TYPE_DRUG_EDUCATION, pb.SERVICE_TYPE_EMPLOYMENT_GUIDANCE]
        judicial.submit(kinds.SERVICE_REFERRAL, message)
    yield judicial
    judicial.close()


@pytest.fixture(scope="module")
def pseudonyms(
    running: Running, bureau: AgencyClient, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The detox centre's pseudonyms of Eric and Frank, from its export."""
    out = tmp_path_factory.mktemp("detox-export")
    result = cli(
        running, "detox", "export", "--out", str(out), "--idle", "3", "--encoding", "gb18030"
    )
    assert result.exit_code == 0, result.output
    assert "acknowledged 2 deliveries" in result.output
    (referrals,) = out.glob("referrals-*.csv")
    with referrals.open(encoding="gb18030", newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert [r["服务需求"] for r in exported] == ["禁毒教育、就业指导"] * 2
    assert all(r["区县代码"] == "610305" for r in exported)
    contents = referrals.read_bytes()
    assert all(person.encode() not in contents for person in (ERIC, FRANK, GRACE))
    eric, frank = (row["服务对象编号"] for row in exported)
    return {ERIC: eric, FRANK: frank}


def test_only_drug_related_people_reach_the_detox_centre_under_its_own_pseudonyms(
    running: Running, pseudonyms: dict[str, str]
) -> None:
    ngo = running.client("ngo")
    (delivery,) = ngo.drain(1, timeout=10)
    seen_by_ngo = kinds.decode(delivery.kind, delivery.payload)
    assert isinstance(seen_by_ngo, pb.ServiceReferral)
    assert seen_by_ngo.subject.pseudonym not in pseudonyms.values()
    assert len(set(pseudonyms.values())) == 2


def test_the_activity_ledger_is_imported_with_line_level_reasons(
    running: Running, bureau: AgencyClient, pseudonyms: dict[str, str], tmp_path: Path
) -> None:
    eric, frank = pseudonyms[ERIC], pseudonyms[FRANK]
    lines = [
        f"XH-1,{eric}、{frank},凤翔区,禁毒教育,集体,{YESTERDAY},120,46,已完成,王警官\n",
        f"XH-2,{frank},610305,就业指导,个别,{YESTERDAY},45,,需跟进,刘警官\n",
        f"XH-3,{eric},某某区,心理疏导,个别,{YESTERDAY},50,,已完成,\n",
        f"XH-4,{eric},610305,法治教育,个别,{TOMORROW},50,,已完成,\n",
        f"XH-5,P-ZZZZZZZZZZZZZZZZZZZZ,610305,义诊,个别,{YESTERDAY},30,,已完成,\n",
        f"XH-2,{frank},610305,就业指导,个别,{YESTERDAY},45,,需跟进,刘警官\n",
    ]
    utf8 = f"XH-6,{eric},610305,心理疏导,个别,{YESTERDAY},40,,已完成,李警官\n"
    path = tmp_path / "帮教活动台账.csv"
    path.write_bytes((HEADER + "".join(lines)).encode("gb18030") + utf8.encode("utf-8"))

    result = cli(running, "detox", "import", str(path))

    assert result.exit_code == 1, result.output
    assert "帮教活动台账.csv (GB18030): 7 rows — 2 accepted, 5 rejected" in result.output
    report = rows(path.with_name(path.name + ".report.csv"))
    assert [(r["line"], r["column"], r["code"]) for r in report] == [
        ("4", "所属区县/unit_code", "INVALID"),
        ("5", "活动日期/service_date", "INVALID_ARGUMENT/PAYLOAD_INVALID"),
        ("6", "对象编号/subject_pseudonyms", "NOT_FOUND/UNKNOWN_PSEUDONYM"),
        ("7", "", "DUPLICATE"),
        ("8", "", "UNREADABLE"),
    ]
    assert "unknown unit '某某区'" in report[0]["reason"]
    assert "future" in report[1]["reason"]
    assert report[3]["reason"] == "duplicates line 3 (same 活动编号 XH-2)"

    received = receive_mids(bureau, [record_mid("XH-1"), record_mid("XH-2")])
    event = kinds.decode(kinds.SERVICE_RECORD, received[record_mid("XH-1")].payload)
    assert isinstance(event, pb.ServiceRecord)
    assert list(event.subject_pseudonyms) == [ERIC, FRANK]
    assert (event.event_kind, event.attendance, event.service_type, event.unit_code) == (
        pb.EVENT_KIND_GROUP,
        46,
        pb.SERVICE_TYPE_DRUG_EDUCATION,
        "610305",
    )
    session = kinds.decode(kinds.SERVICE_RECORD, received[record_mid("XH-2")].payload)
    assert isinstance(session, pb.ServiceRecord)
    assert list(session.subject_pseudonyms) == [FRANK]
    assert session.outcome == pb.SERVICE_OUTCOME_FOLLOW_UP_NEEDED


def test_a_pseudonym_of_the_ngo_is_not_found_for_the_detox_centre(
    running: Running, bureau: AgencyClient, pseudonyms: dict[str, str], tmp_path: Path
) -> None:
    ngo_pseudonym = _ngo_pseudonym(running, bureau)
    book = Workbook()
    sheet = book.active
    english = "record_id subject_pseudonyms unit_code service_type event_kind service_date"
    sheet.append([*english.split(), "duration_minutes", "attendance", "outcome"])
    served = date.today() - timedelta(days=3)
    for record_id, pseudonym in (("XH-8", ngo_pseudonym), ("XH-9", pseudonyms[ERIC])):
        clinic = [record_id, pseudonym, "610305", "free_clinic", "individual", served]
        sheet.append([*clinic, 20, 1, "completed"])
    path = tmp_path / "ledger.xlsx"
    book.save(path)

    result = cli(running, "detox", "import", str(path))

    assert "ledger.xlsx (XLSX): 2 rows — 1 accepted, 1 rejected" in result.output
    (problem,) = rows(path.with_name(path.name + ".report.csv"))
    assert (problem["line"], problem["code"]) == ("2", "NOT_FOUND/UNKNOWN_PSEUDONYM")
    assert receive_mids(bureau, [record_mid("XH-9")])


def _ngo_pseudonym(running: Running, bureau: AgencyClient) -> str:
    """Refer someone to the NGO and read its pseudonym from the NGO's inbox."""
    message = referral(resident_id("610326"))
    sent = bureau.submit(kinds.SERVICE_REFERRAL, message)
    known = known_as(running.settings, "ngo", "judicial", sent.mid)
    delivery = receive_mids(running.client("ngo"), [known])[known]
    view = kinds.decode(delivery.kind, delivery.payload)
    assert isinstance(view, pb.ServiceReferral)
    return view.subject.pseudonym
