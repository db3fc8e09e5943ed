"""The NGO linkage (黄丝带) end to end, through a real gateway and RabbitMQ: the
bureau's referrals exported to the NGO's CSV (pseudonyms only), the NGO's
service-record spreadsheet (CSV with bad rows, XLSX, a watched folder)
imported as signed messages, and the bureau receiving the records with the
people resolved."""

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
from gateway.testing import enrolment, referral, resident_id
from tests.e2e.conftest import Running
from tests.helpers import receive_mids

ALICE = resident_id("610302")  # referred, then released
BOB = resident_id("610303")  # referred
CAROL = resident_id("610304")  # drug-related: referred to the detox centre, never to the NGO
PEOPLE = {ALICE: "王某甲", BOB: "李某乙", CAROL: "赵某丙"}
HEADER = (
    "记录编号,服务对象编号,区县代码,服务类型,活动形式,服务日期,时长(分钟),参加人数,"
    "服务结果,服务人员\n"
)
YESTERDAY = (date.today() - timedelta(days=1)).isoformat()


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
    """The message id the connector gives record ``record_id`` of the NGO."""
    return Outgoing(kinds.SERVICE_RECORD, pb.ServiceRecord(), f"记录编号 {record_id}").mid("ngo")


@pytest.fixture(scope="module")
def bureau(running: Running) -> Iterator[AgencyClient]:
    """The bureau enrols Alice, refers Alice, Bob and Carol, then releases Alice."""
    judicial = running.client("judicial")
    judicial.submit(kinds.ROSTER_CHANGE, enrolment(ALICE))
    for person, drug_related in ((ALICE, False), (BOB, False), (CAROL, True)):
        message = referral(person)
        message.subject.name = PEOPLE[person]
        message.drug_related = drug_related
        message.needs.append(pb.SERVICE_TYPE_VOCATIONAL_TRAINING)
        judicial.submit(kinds.SERVICE_REFERRAL, message)
    release = enrolment(ALICE)
    release.change_type = pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED
    judicial.submit(kinds.ROSTER_CHANGE, release)
    yield judicial
    judicial.close()


@pytest.fixture(scope="module")
def exported(
    running: Running, bureau: AgencyClient, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The folder ``silian ngo export`` wrote the NGO's inbox into."""
    out = tmp_path_factory.mktemp("ngo-export")
    result = cli(running, "ngo", "export", "--out", str(out), "--idle", "3")
    assert result.exit_code == 0, result.output
    assert "acknowledged 3 deliveries" in result.output
    return out


@pytest.fixture(scope="module")
def pseudonyms(exported: Path) -> dict[str, str]:
    """The NGO's pseudonym of Alice and of Bob (referrals arrive in order)."""
    (referrals,) = exported.glob("referrals-*.csv")
    alice, bob = (row["服务对象编号"] for row in rows(referrals))
    return {ALICE: alice, BOB: bob}


def test_the_ngo_exports_its_referrals_and_changes_without_identity(
    exported: Path, pseudonyms: dict[str, str]
) -> None:
    (referrals,) = exported.glob("referrals-*.csv")
    assert [(r["服务对象编号"], r["区县代码"], r["服务需求"]) for r in rows(referrals)] == [
        (pseudonyms[ALICE], "610302", "心理咨询、职业技能培训"),
        (pseudonyms[BOB], "610302", "心理咨询、职业技能培训"),
    ]
    assert all(r["年龄段"] and r["发送方"] == "judicial" for r in rows(referrals))
    (changes,) = exported.glob("changes-*.csv")
    assert [(r["服务对象编号"], r["变动类型"]) for r in rows(changes)] == [
        (pseudonyms[ALICE], "期满解除矫正")
    ]
    everything = b"".join(path.read_bytes() for path in exported.iterdir())
    for secret in [*PEOPLE, *PEOPLE.values(), "盗窃罪", "宝鸡市金台区"]:
        assert secret.encode() not in everything


def test_an_import_sends_the_valid_rows_and_reports_each_bad_one(
    running: Running, bureau: AgencyClient, pseudonyms: dict[str, str], tmp_path: Path
) -> None:
    alice, bob = pseudonyms[ALICE], pseudonyms[BOB]
    lines = [
        f"HS-1,{alice},610302,心理咨询,个别,{YESTERDAY},60,,已完成,李老师\n",
        f"HS-2,{alice};{bob},渭滨区,专家教育,集体,{YESTERDAY},90,20,已完成,张教授\n",
        f"HS-3,P-ZZZZZZZZZZZZZZZZZZZZ,610302,义诊,个别,{YESTERDAY},30,,已完成,\n",
        f"HS-4,{bob},610399,义诊,个别,{YESTERDAY},30,,已完成,\n",
        f"HS-5,{bob},610302,义诊,个别,2026-02-30,30,,已完成,\n",
        f"HS-1,{alice},610302,心理咨询,个别,{YESTERDAY},60,,已完成,李老师\n",
    ]
    legacy = f"HS-6,{bob},610302,技能培训,个别,{YESTERDAY},45,,已完成,王老师\n"
    path = tmp_path / "服务记录.csv"
    path.write_bytes((HEADER + "".join(lines)).encode("utf-8") + legacy.encode("gb18030"))

    result = cli(running, "ngo", "import", str(path))

    assert result.exit_code == 1, result.output
    assert "服务记录.csv (UTF-8): 7 rows — 2 accepted, 5 rejected" in result.output
    assert "Traceback" not in result.output
    report = rows(path.with_name(path.name + ".report.csv"))
    assert [(r["line"], r["column"], r["code"]) for r in report] == [
        ("4", "服务对象编号/subject_pseudonyms", "NOT_FOUND/UNKNOWN_PSEUDONYM"),
        ("5", "区县代码/unit_code", "INVALID_ARGUMENT/PAYLOAD_INVALID"),
        ("6", "服务日期/service_date", "INVALID"),
        ("7", "", "DUPLICATE"),
        ("8", "", "UNREADABLE"),
    ]
    assert "is not the pseudonym of a person referred to ngo" in report[0]["reason"]
    assert "'610399' is not a configured unit code" in report[1]["reason"]
    assert "not a date that exists" in report[2]["reason"]
    assert report[3]["reason"] == "duplicates line 2 (same 记录编号 HS-1)"
    assert "encoding" in report[4]["reason"] and "UTF-8" in report[4]["reason"]

    received = receive_mids(bureau, [record_mid("HS-1"), record_mid("HS-2")])
    individual = kinds.decode(kinds.SERVICE_RECORD, received[record_mid("HS-1")].payload)
    group = kinds.decode(kinds.SERVICE_RECORD, received[record_mid("HS-2")].payload)
    assert isinstance(individual, pb.ServiceRecord) and isinstance(group, pb.ServiceRecord)
    assert list(individual.subject_pseudonyms) == [ALICE]
    assert list(group.subject_pseudonyms) == [ALICE, BOB]
    assert (group.event_kind, group.attendance, group.service_type) == (
        pb.EVENT_KIND_GROUP,
        20,
        pb.SERVICE_TYPE_EXPERT_EDUCATION,
    )
    assert received[record_mid("HS-2")].policy_id == "service.record.judicial"

    rerun = cli(running, "ngo", "import", str(path))
    assert "2 accepted, 5 rejected" in rerun.output
    assert bureau.drain(1, timeout=3) == []  # nothing was sent twice


def test_a_workbook_dropped_into_the_watched_folder_is_imported(
    running: Running, bureau: AgencyClient, pseudonyms: dict[str, str], tmp_path: Path
) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.strip().split(","))
    served = date.today() - timedelta(days=2)
    sheet.append(["HS-7", pseudonyms[BOB], 610302, "困境儿童帮扶", "个别", served, 40, 1, "已完成"])
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    book.save(inbox / "三月.xlsx")

    result = cli(running, "ngo", "watch", str(inbox), "--once", "--settle", "0")

    assert result.exit_code == 0, result.output
    assert "三月.xlsx: 1 accepted, 0 rejected" in result.output
    assert (inbox / "done" / "三月.xlsx").exists()
    delivery = receive_mids(bureau, [record_mid("HS-7")])[record_mid("HS-7")]
    record = kinds.decode(kinds.SERVICE_RECORD, delivery.payload)
    assert isinstance(record, pb.ServiceRecord)
    assert list(record.subject_pseudonyms) == [BOB]
    assert record.service_type == pb.SERVICE_TYPE_CHILD_ASSISTANCE


def test_a_file_missing_a_column_is_refused_in_one_line(running: Running, tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text(HEADER.replace(",服务结果", ""), encoding="utf-8")
    result = cli(running, "ngo", "import", str(path))
    assert result.exit_code == 1
    [line] = [text for text in result.output.splitlines() if text.startswith("Error:")]
    assert line.startswith(f"Error: {path}, line 1: missing columns 服务结果/outcome")
