"""The police linkage end to end, through a real gateway and RabbitMQ: the
bureau's roster and requests exported to the police's CSV, the police's
verification export (GB18030, with bad rows) imported as signed messages, the
alerts the gateway raises on the bureau's inbox with their evidence, silence
found by the sweep, and the inbox folder watched."""

from __future__ import annotations

import csv
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.client import AgencyClient
from gateway.domain import kinds
from gateway.domain.calendar import BUREAU_TIME
from gateway.proto.silian.v1 import envelope_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.testing import enrolment, resident_id
from tests.e2e.conftest import Running

ROAMER = resident_id("610302")  # A: checked in Xi'an without leave
TRAVELLER = resident_id("610303")  # B: on approved leave
STRANGER = resident_id("610304")  # never enrolled
HEADERS = "记录编号,身份证号,姓名,单位,核查类型,核查结果,发现时间,地点,地点区划代码,警情编号\n"


def cli(running: Running, *args: str) -> click.testing.Result:
    settings = running.settings
    return CliRunner().invoke(
        main,
        ["--data-dir", str(settings.data_dir), *args, "--target", running.target],
        env={"SILIAN_DATABASE_URL": settings.database_url},
        catch_exceptions=False,
    )


def _ago(hours: float) -> str:
    return (datetime.now(BUREAU_TIME) - timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


def _bad_check_character(rid: str) -> str:
    return rid[:17] + ("1" if rid[17] == "0" else "0")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _drain(client: AgencyClient, count: int) -> list[envelope_pb2.Delivery]:
    return client.drain(count, timeout=20)


def _by_type(deliveries: list[envelope_pb2.Delivery]) -> dict[int, pb.Alert]:
    alerts = [kinds.decode(d.kind, d.payload) for d in deliveries if d.kind == kinds.ALERT]
    return {alert.alert_type: alert for alert in alerts if isinstance(alert, pb.Alert)}


@pytest.fixture(scope="module")
def bureau(running: Running) -> Iterator[AgencyClient]:
    """The bureau enrols A and B, grants B leave around today, asks for a check of A."""
    judicial = running.client("judicial")
    today = datetime.now(BUREAU_TIME).date()
    judicial.submit(kinds.ROSTER_CHANGE, enrolment(ROAMER, "610302"))
    judicial.submit(kinds.ROSTER_CHANGE, enrolment(TRAVELLER, "610303"))
    judicial.submit(
        kinds.ROSTER_CHANGE,
        pb.RosterChange(
            change_id="RC-LEAVE-1",
            change_type=pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED,
            subject=pb.Subject(resident_id=TRAVELLER, name="李某"),
            unit_code="610303",
            effective_date=(today - timedelta(days=1)).isoformat(),
            leave_start_date=(today - timedelta(days=1)).isoformat(),
            leave_end_date=(today + timedelta(days=1)).isoformat(),
            destination="西安市",
        ),
    )
    request = pb.VerificationRequest(
        request_id="VQ-2026-0001",
        unit_code="610302",
        subjects=[pb.Subject(resident_id=ROAMER, name="王某")],
        check_types=[pb.CHECK_TYPE_BIG_DATA],
        reason="疑似外出未请假",
    )
    request.response_deadline.FromDatetime(datetime.now(UTC) + timedelta(days=2))
    judicial.submit(kinds.VERIFICATION_REQUEST, request)
    yield judicial
    judicial.close()


def test_the_police_export_the_roster_and_requests_they_received(
    running: Running, bureau: AgencyClient, tmp_path: Path
) -> None:
    result = cli(running, "police", "export", "--out", str(tmp_path), "--idle", "3")
    assert result.exit_code == 0, result.output
    assert "acknowledged 4 deliveries" in result.output
    (roster_file,) = tmp_path.glob("roster-*.csv")
    assert stat.S_IMODE(roster_file.stat().st_mode) == 0o600  # it names people
    roster = _rows(roster_file)
    assert [(r["身份证号"], r["变更类型"]) for r in roster] == [
        (ROAMER, "接收入矫"),
        (TRAVELLER, "接收入矫"),
        (TRAVELLER, "外出请假批准"),
    ]
    assert roster[0]["姓名"] == "王某" and roster[0]["罪名"] == "盗窃罪"
    assert all(uuid.UUID(r["消息编号"]) and r["发送方"] == "judicial" for r in roster)
    (requests_file,) = tmp_path.glob("requests-*.csv")
    (request,) = _rows(requests_file)
    assert (request["请求编号"], request["身份证号"], request["核查类型"]) == (
        "VQ-2026-0001",
        ROAMER,
        "大数据核查",
    )
    again = cli(running, "police", "export", "--out", str(tmp_path), "--idle", "1")
    assert "acknowledged 0 deliveries" in again.output


def test_an_import_sends_valid_rows_reports_bad_ones_and_raises_alerts_with_evidence(
    running: Running, bureau: AgencyClient, tmp_path: Path
) -> None:
    lines = [
        f"R1,{ROAMER},王某,渭滨区,旅馆住宿,比中,{_ago(5)},西安市雁塔区某酒店,610113,GA-1\n",
        f"R2,{TRAVELLER},李某,金台区,旅馆住宿,比中,{_ago(5)},西安市某酒店,610113,\n",
        f"R3,{ROAMER},王某,610302,拘留,比中,{_ago(4)},渭滨区看守所,610302,GA-3\n",
        f"R4,{ROAMER},王某,610302,人机分离,比中,{_ago(3)},渭滨区,610302,\n",
        f"R5,{_bad_check_character(ROAMER)},王某,610302,旅馆住宿,未比中,{_ago(3)},,,\n",
        f"R6,{ROAMER},王某,610399,网吧上网,未比中,{_ago(3)},,,\n",
        f"R7,{ROAMER},王某,610302,网吧上网,未比中,2026-02-30 10:00,,,\n",
        f"R1,{ROAMER},王某,渭滨区,旅馆住宿,比中,{_ago(5)},西安市雁塔区某酒店,610113,GA-1\n",
        f"R8,{STRANGER},赵某,陈仓区,出行,比中,{_ago(2)},宝鸡站,610302,\n",
    ]
    utf8_line = f"R9,{ROAMER},王某,渭滨区,视频点名,未比中,{_ago(2)},,,\n"
    last = f"R10,{TRAVELLER},李某,金台区,大数据核查,未比中,{_ago(2)},,,\n"
    path = tmp_path / "核查结果.csv"
    path.write_bytes(
        (HEADERS + "".join(lines)).encode("gb18030")
        + utf8_line.encode("utf-8")
        + last.encode("gb18030")
    )

    result = cli(running, "police", "import", str(path))

    assert result.exit_code == 1, result.output
    assert "核查结果.csv (GB18030): 11 rows — 5 accepted, 6 rejected" in result.output
    assert "Traceback" not in result.output
    report = _rows(path.with_name(path.name + ".report.csv"))
    assert [(r["line"], r["column"], r["code"]) for r in report] == [
        ("6", "身份证号/resident_id", "INVALID"),
        ("7", "单位/unit", "INVALID_ARGUMENT/PAYLOAD_INVALID"),
        ("8", "发现时间/observed_at", "INVALID"),
        ("9", "", "DUPLICATE"),
        ("10", "身份证号/resident_id", "NOT_FOUND/SUBJECT_NOT_ON_ROSTER"),
        ("11", "", "UNREADABLE"),
    ]
    assert "check character should be" in report[0]["reason"]
    assert "'610399' is not a configured unit code" in report[1]["reason"]
    assert report[3]["reason"] == "duplicates line 2 (same 记录编号 R1)"

    delivered = _drain(bureau, 8)
    results = {
        message.result_id: d.mid
        for d in delivered
        if d.kind == kinds.VERIFICATION_RESULT
        and isinstance(message := kinds.decode(d.kind, d.payload), pb.VerificationResult)
    }
    assert sorted(results) == ["R1", "R10", "R2", "R3", "R4"]
    alerts = _by_type(delivered)
    assert sorted(alerts) == [
        pb.ALERT_TYPE_OUT_OF_BOUNDS,
        pb.ALERT_TYPE_NEW_OFFENCE,
        pb.ALERT_TYPE_DEVICE_SEPARATION,
    ]
    assert list(alerts[pb.ALERT_TYPE_OUT_OF_BOUNDS].evidence_mids) == [results["R1"]]
    assert list(alerts[pb.ALERT_TYPE_NEW_OFFENCE].evidence_mids) == [results["R3"]]
    assert list(alerts[pb.ALERT_TYPE_DEVICE_SEPARATION].evidence_mids) == [results["R4"]]
    assert all(alert.subject.resident_id == ROAMER for alert in alerts.values())
    assert alerts[pb.ALERT_TYPE_NEW_OFFENCE].severity == pb.SEVERITY_URGENT
    assert {d.sender for d in delivered if d.kind == kinds.ALERT} == {"gateway"}

    procuratorate = cli(
        running, "procuratorate", "export", "--out", str(tmp_path / "p"), "--idle", "2"
    )
    (alert_file,) = (tmp_path / "p").glob("alerts-*.csv")
    assert [(r["预警类型"], r["证据消息编号"]) for r in _rows(alert_file)] == [
        ("新的违法犯罪", results["R3"])
    ], procuratorate.output

    rerun = cli(running, "police", "import", str(path))
    assert "5 accepted, 6 rejected" in rerun.output
    assert bureau.drain(1, timeout=3) == []  # nothing was sent twice


def test_silence_raises_one_possible_absconding_alert_per_person(
    running: Running, bureau: AgencyClient
) -> None:
    service = running.background.gateway.service
    later = datetime.now(UTC) + timedelta(days=8)
    raised = service.sweep(now=later)
    assert raised >= 2
    assert service.sweep(now=later + timedelta(hours=1)) == 0
    everything = [
        alert
        for d in _drain(bureau, raised)
        if isinstance(alert := kinds.decode(d.kind, d.payload), pb.Alert)
    ]
    # Eight days on, the alerts raised earlier in this module are past their
    # disposal deadlines and the bureau's check request past its own: those
    # escalations (闭环) are the only other alerts.
    alerts = [a for a in everything if a.alert_type == pb.ALERT_TYPE_POSSIBLE_ABSCONDING]
    assert {a.alert_type for a in everything} <= {
        pb.ALERT_TYPE_POSSIBLE_ABSCONDING,
        pb.ALERT_TYPE_DISPOSAL_OVERDUE,
        pb.ALERT_TYPE_CAMPAIGN_UNANSWERED,
    }
    assert {a.subject.resident_id for a in alerts} == {ROAMER, TRAVELLER}
    assert all(len(a.evidence_mids) == 1 for a in alerts)


def test_a_watched_folder_imports_dropped_files(running: Running, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "hits.csv").write_text(
        HEADERS + f"W1,{ROAMER},王某,渭滨区,视频点名,未比中,{_ago(1)},,,\n", encoding="utf-8"
    )
    (inbox / "bad.csv").write_text("姓名\n王某\n", encoding="utf-8")
    result = cli(running, "police", "watch", str(inbox), "--once", "--settle", "0")
    assert result.exit_code == 0, result.output
    assert (inbox / "done" / "hits.csv").exists()
    assert (inbox / "failed" / "bad.csv").exists()
    report = (inbox / "failed" / "bad.csv.report.csv").read_text("utf-8-sig")
    assert "missing columns 记录编号/record_id" in report
    assert "hits.csv: 1 accepted, 0 rejected" in result.output


def test_a_file_that_cannot_be_used_is_refused_in_one_line(
    running: Running, tmp_path: Path
) -> None:
    path = tmp_path / "hits.csv"
    path.write_text("姓名,地点\n王某,宝鸡\n", encoding="utf-8")
    result = cli(running, "police", "import", str(path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: {path}, line 1: missing columns 记录编号/record_id, 身份证号/")
    assert "expected headers: 记录编号/record_id, 请求编号/request_id (optional)" in line
