"""The connector toolkit: native files in any of the agencies' encodings and
header spellings, per-row reporting, sending, exporting and watching —
with fake clients (the e2e tests of each linkage use the real gateway)."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message
from openpyxl import Workbook

from adapters.police.labels import CHECK_TYPES
from gateway.client.connectors import (
    Cells,
    Column,
    ExportFormat,
    FieldError,
    FileProblem,
    ImportReport,
    NativeFormat,
    Outgoing,
    Row,
    RowProblem,
    export_inbox,
    import_file,
    read_native,
    watch,
)
from gateway.client.connectors.exports import LEDGER
from gateway.client.connectors.fields import parse_date, parse_moment
from gateway.client.connectors.imports import refusal_problems
from gateway.domain import kinds
from gateway.domain.units import Units
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.testing import resident_id
from tests.unit.exchange_fakes import FakeAgency, FakeExchange, gateway_signed

PERSON = resident_id()
NATIVE = NativeFormat(
    "test roster",
    (
        Column("record_id", ("编号", "record_id"), path="referral_id"),
        Column("resident_id", ("身份证号", "resident_id"), path="subject.resident_id"),
        Column("name", ("姓名", "name"), required=False, path="subject.name"),
        Column("unit", ("单位", "unit"), path="unit_code"),
    ),
)


def _csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --- reading files ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_chinese_csv_is_read_in_each_encoding_agencies_write(tmp_path: Path, encoding: str) -> None:
    path = _csv(tmp_path / "a.csv", f"编号,身份证号,姓名,单位\nR1,{PERSON},王某,渭滨区\n", encoding)
    native = read_native(path, NATIVE)
    assert (
        native.encoding
        == {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (BOM)", "gb18030": "GB18030"}[encoding]
    )
    assert native.rows == [
        Row(2, {"record_id": "R1", "resident_id": PERSON, "name": "王某", "unit": "渭滨区"})
    ]


def test_a_line_in_another_encoding_is_reported_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        "编号,身份证号,姓名,单位\nR1,1,王某,u\n".encode()
        + "R2,2,李某,u\n".encode("gb18030")
        + "R3,3,张某,u\n".encode()
    )
    native = read_native(path, NATIVE)
    assert [row.line for row in native.rows] == [2, 4]
    (problem,) = native.problems
    assert (problem.line, problem.code) == (3, "UNREADABLE")
    assert "another encoding than the rest of the file (UTF-8)" in problem.reason


def test_a_utf8_line_in_a_gb18030_file_is_reported_not_read_as_gibberish(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        "编号,身份证号,姓名,单位\nR1,1,王某,渭滨区\n".encode("gb18030")
        + "R2,2,李某,金台区\n".encode()
        + "R3,3,张某,陈仓区\n".encode("gb18030")
    )
    native = read_native(path, NATIVE)
    assert native.encoding == "GB18030"
    assert [(row.line, row.get("name")) for row in native.rows] == [(2, "王某"), (4, "张某")]
    assert [(p.line, p.code) for p in native.problems] == [(3, "UNREADABLE")]
    assert "(GB18030); re-save the file as GB18030" in native.problems[0].reason


def test_headers_match_in_english_any_case_with_spaces_and_required_marks(tmp_path: Path) -> None:
    path = _csv(tmp_path / "en.csv", " Record_ID ,*身份证号, NAME ,unit,extra\nR1,1,n,u,ignored\n")
    assert read_native(path, NATIVE).rows == [
        Row(2, {"record_id": "R1", "resident_id": "1", "name": "n", "unit": "u"})
    ]


def test_missing_columns_are_reported_once_with_the_expected_headers(tmp_path: Path) -> None:
    path = _csv(tmp_path / "short.csv", "姓名,单位\n王某,u\n李某,u\n")
    with pytest.raises(FileProblem) as raised:
        read_native(path, NATIVE)
    message = str(raised.value)
    assert message.startswith(
        f"{path}, line 1: missing columns 编号/record_id, 身份证号/resident_id"
    )
    assert "expected headers: 编号/record_id, 身份证号/resident_id, 姓名/name (optional)" in message
    assert message.removeprefix(str(path)).count("missing") == 1


def test_a_column_given_twice_is_refused(tmp_path: Path) -> None:
    path = _csv(tmp_path / "twice.csv", "编号,身份证号,resident_id,单位\nR1,1,1,u\n")
    with pytest.raises(FileProblem, match="columns 2 and 3 both hold 身份证号/resident_id"):
        read_native(path, NATIVE)


def test_line_numbers_count_blank_lines_and_multi_line_cells(tmp_path: Path) -> None:
    path = _csv(tmp_path / "lines.csv", '\n编号,身份证号,姓名,单位\nR1,1,"两\n行",u\n\nR2,2,,u\n')
    native = read_native(path, NATIVE)
    assert [(row.line, row.get("name")) for row in native.rows] == [(3, "两\n行"), (6, "")]


def test_a_row_with_more_cells_than_the_header_is_rejected(tmp_path: Path) -> None:
    path = _csv(tmp_path / "wide.csv", "编号,身份证号,单位\nR1,1,u,surplus\nR2,2,u\n")
    native = read_native(path, NATIVE)
    assert [row.line for row in native.rows] == [3]
    assert (
        native.problems[0].line == 2
        and "has 4 cells; the header has 3" in native.problems[0].reason
    )


def test_xlsx_cells_become_text_and_ids_typed_as_numbers_are_caught(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["编号", "身份证号", "姓名", "单位"])
    sheet.append([1001, PERSON, "王某", 610302])
    sheet.append(["R2", int(PERSON[:17] + "0"), "李某", "u"])
    sheet.append([None, None, None, None])
    sheet.append([datetime(2026, 3, 5, 14, 30), PERSON, "", date(2026, 3, 5)])
    book.save(tmp_path / "book.xlsx")
    native = read_native(tmp_path / "book.xlsx", NATIVE)
    assert native.encoding == "XLSX"
    assert [(r.line, r.get("record_id"), r.get("unit")) for r in native.rows] == [
        (2, "1001", "610302"),
        (5, "2026-03-05 14:30:00", "2026-03-05"),
    ]
    (problem,) = native.problems
    assert (problem.line, problem.column) == (3, "身份证号/resident_id")
    assert "format the column as text" in problem.reason


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("old.xls", b"\xd0\xcf\x11\xe0", "save it as .xlsx or .csv"),
        ("notes.txt", b"x", "unknown file type .txt"),
        ("broken.xlsx", b"not a zip", "not a readable XLSX workbook"),
        ("empty.csv", b"\n\n", "no header row"),
    ],
)
def test_files_that_cannot_be_read_name_the_file_and_why(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(FileProblem, match=reason) as raised:
        read_native(tmp_path / name, NATIVE)
    assert str(raised.value).startswith(str(tmp_path / name))


# --- reading cells ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["2026-03-05", "2026/3/5", "2026.03.05", "20260305", "2026年3月5日"]
)
def test_dates_are_read_in_the_forms_office_software_writes(text: str) -> None:
    assert parse_date(text) == (date(2026, 3, 5), "")


@pytest.mark.parametrize(
    ("text", "reason"),
    [("2026-02-30", "not a date that exists"), ("5 March", "not a date (write it as YYYY-MM-DD)")],
)
def test_impossible_dates_are_refused(text: str, reason: str) -> None:
    assert parse_date(text)[0] is None and reason in parse_date(text)[1]


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-03-05 14:30", datetime(2026, 3, 5, 6, 30, tzinfo=UTC)),
        ("2026/3/5 8:05:09", datetime(2026, 3, 5, 0, 5, 9, tzinfo=UTC)),
        ("2026年3月5日 14时30分", datetime(2026, 3, 5, 6, 30, tzinfo=UTC)),
        ("2026-03-05T14:30:00+08:00", datetime(2026, 3, 5, 6, 30, tzinfo=UTC)),
        ("2026-03-05T06:30:00Z", datetime(2026, 3, 5, 6, 30, tzinfo=UTC)),
    ],
)
def test_times_are_beijing_time_unless_they_carry_an_offset(text: str, utc: datetime) -> None:
    assert parse_moment(text) == (utc, "")


def test_every_bad_cell_of_a_row_is_reported() -> None:
    bad_check = PERSON[:17] + ("0" if PERSON[17] != "0" else "1")
    cells = Cells(Row(7, {"resident_id": bad_check, "when": "2026-02-30 10:00", "type": "散步"}))
    cells.resident_id("resident_id")
    cells.moment("when")
    cells.choice("type", CHECK_TYPES)
    cells.text("missing", required=True)
    assert [error.field for error in cells.errors] == ["resident_id", "when", "type", "missing"]
    assert f"check character should be {PERSON[17]}" in cells.errors[0].reason
    assert "not a date and time that exists" in cells.errors[1].reason
    assert "unknown value '散步'; expected one of 旅馆住宿、" in cells.errors[2].reason
    assert cells.errors[3] == FieldError("missing", "is required")


def test_units_are_given_by_code_or_by_name() -> None:
    units = Units.default()
    cells = Cells(Row(2, {"a": "渭滨区", "b": "金台区司法局", "c": "610399", "d": "长安区"}))
    assert [cells.unit(name, units) for name in "abcd"] == ["610302", "610303", "610399", ""]
    assert [e.field for e in cells.errors] == ["d"] and "unknown unit '长安区'" in cells.errors[
        0
    ].reason


def test_labels_accept_chinese_english_and_enum_names() -> None:
    for text in ("旅馆住宿", "hotel", "HOTEL_STAY", "check_type_hotel_stay", " Hotel Stay "):
        assert CHECK_TYPES.parse(text) == pb.CHECK_TYPE_HOTEL_STAY
    assert CHECK_TYPES.label(pb.CHECK_TYPE_DEVICE_SEPARATION) == "人机分离"


# --- importing: mapping, duplicates, sending, the report --------------------------------


class Mapper:
    native = NATIVE

    def map_row(self, row: Row) -> Outgoing | list[FieldError]:
        cells = Cells(row)
        referral = pb.ServiceReferral(
            referral_id=cells.text("record_id", required=True),
            subject=pb.Subject(resident_id=cells.resident_id("resident_id")),
            unit_code=cells.text("unit", required=True),
        )
        if cells.errors:
            return cells.errors
        return Outgoing(kinds.SERVICE_REFERRAL, referral, key=f"编号 {referral.referral_id}")


class FakeGateway:
    """A client whose gateway answers like SubmitStream: a rejection for unit
    "bad" (naming the unit field), RESOURCE_EXHAUSTED the first ``busy`` times,
    else a receipt."""

    agency = "judicial"

    def __init__(self, busy: int = 0) -> None:
        self.busy = busy
        self.sent: list[envelope_pb2.Envelope] = []
        self.stub = self

    def metadata(self) -> list[tuple[str, str]]:
        return []

    def envelope(
        self, kind: str, message: Message, mid: str | None = None
    ) -> envelope_pb2.Envelope:
        return envelope_pb2.Envelope(
            mid=mid or "", kind=kind, sender=self.agency, payload=kinds.encode(message)
        )

    def SubmitStream(
        self, requests: Iterable[exchange_pb2.SubmitStreamRequest], **_: object
    ) -> Iterator[exchange_pb2.SubmitStreamResponse]:
        for request in requests:
            envelope = request.envelope
            self.sent.append(envelope)
            referral = kinds.decode(envelope.kind, envelope.payload)
            assert isinstance(referral, pb.ServiceReferral)
            if self.busy:
                self.busy -= 1
                yield exchange_pb2.SubmitStreamResponse(
                    mid=envelope.mid,
                    rejection=exchange_pb2.Rejection(
                        code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
                        reason="OVERLOADED",
                        retry_after_ms=1,
                    ),
                )
            elif referral.unit_code == "bad":
                yield exchange_pb2.SubmitStreamResponse(
                    mid=envelope.mid,
                    rejection=exchange_pb2.Rejection(
                        code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                        reason="PAYLOAD_INVALID",
                        message="service.referral payload failed validation",
                        field_violations=[
                            exchange_pb2.FieldViolation(
                                field="payload.unit_code",
                                description="'bad' is not a configured unit code",
                            )
                        ],
                    ),
                )
            else:
                yield exchange_pb2.SubmitStreamResponse(
                    mid=envelope.mid, receipt=envelope_pb2.Receipt(mid=envelope.mid)
                )


def _bad_id() -> str:
    return PERSON[:17] + ("0" if PERSON[17] != "0" else "1")


def test_valid_rows_go_through_and_each_rejection_names_line_column_and_reason(
    tmp_path: Path,
) -> None:
    path = _csv(
        tmp_path / "rows.csv",
        "编号,身份证号,单位\n"
        f"R1,{PERSON},610302\n"
        f"R2,{_bad_id()},610302\n"
        f"R3,{PERSON},bad\n"
        f"R1,{PERSON},610302\n"
        f"R4,{PERSON},610303\n",
    )
    gateway = FakeGateway()
    report = import_file(path, Mapper(), gateway)
    assert report.rows == 5
    assert [line for line, _ in report.accepted] == [2, 6]
    assert [(p.line, p.column, p.code) for p in report.problems] == [
        (3, "身份证号/resident_id", "INVALID"),
        (5, "", "DUPLICATE"),
        (4, "单位/unit", "INVALID_ARGUMENT/PAYLOAD_INVALID"),
    ]
    assert report.problems[1].reason == "duplicates line 2 (same 编号 R1)"
    assert report.problems[2].reason == "'bad' is not a configured unit code"
    assert report.rejected_lines == [3, 4, 5]
    assert len(gateway.sent) == 3


def test_the_report_is_a_csv_spreadsheet_programs_open(tmp_path: Path) -> None:
    path = _csv(tmp_path / "rows.csv", f"编号,身份证号,单位\nR2,{_bad_id()},610302\n")
    report = import_file(path, Mapper(), FakeGateway())
    report.write(tmp_path / "report.csv")
    raw = (tmp_path / "report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == ["line", "column", "reason", "code"]
    assert rows[1][:2] == ["2", "身份证号/resident_id"] and rows[1][3] == "INVALID"


def test_message_ids_follow_the_record_so_a_second_import_sends_the_same_ids(
    tmp_path: Path,
) -> None:
    path = _csv(tmp_path / "rows.csv", f"编号,身份证号,单位\nR1,{PERSON},610302\n")
    first, second = FakeGateway(), FakeGateway()
    import_file(path, Mapper(), first)
    import_file(path, Mapper(), second)
    assert first.sent[0].mid == second.sent[0].mid
    assert Outgoing("k", pb.Alert(), "x").mid("police") != Outgoing("k", pb.Alert(), "x").mid("ngo")


def test_rows_the_gateway_asks_to_retry_later_are_sent_again(tmp_path: Path) -> None:
    path = _csv(tmp_path / "rows.csv", f"编号,身份证号,单位\nR1,{PERSON},610302\nR2,{PERSON},1\n")
    gateway = FakeGateway(busy=2)
    report = import_file(path, Mapper(), gateway)
    assert [line for line, _ in report.accepted] == [2, 3] and not report.problems
    assert len(gateway.sent) == 4


def test_a_gateway_refusal_without_fields_is_reported_against_the_row() -> None:
    rejection = exchange_pb2.Rejection(
        code=grpc.StatusCode.NOT_FOUND.value[0], reason="X", message="no such thing"
    )
    (problem,) = refusal_problems(9, Outgoing("k", pb.Alert(), "编号 R9"), rejection, NATIVE)
    assert (problem.line, problem.column, problem.reason, problem.code) == (
        9,
        "",
        "no such thing",
        "NOT_FOUND/X",
    )
    reused = exchange_pb2.Rejection(
        code=grpc.StatusCode.ALREADY_EXISTS.value[0], reason="MID_REUSED"
    )
    (problem,) = refusal_problems(9, Outgoing("k", pb.Alert(), "编号 R9"), reused, NATIVE)
    assert problem.reason.startswith("编号 R9 was sent before with different content")


# --- exporting ------------------------------------------------------------------------


def _delivery(number: int, message: Message, kind: str) -> envelope_pb2.Delivery:
    delivery = envelope_pb2.Delivery(
        delivery_id=f"d{number}",
        mid=f"00000000-0000-0000-0000-{number:012d}",
        kind=kind,
        sender="judicial",
        payload=kinds.encode(message),
    )
    delivery.accepted_at.FromDatetime(datetime(2026, 3, 5, 6, 30, tzinfo=UTC))
    return gateway_signed(delivery)


REFERRALS = ExportFormat(
    kind=kinds.SERVICE_REFERRAL,
    stem="referrals",
    headers=("转介编号", "单位代码"),
    rows=lambda m: [(m.referral_id, m.unit_code)],  # type: ignore[attr-defined]
)


def test_export_writes_a_csv_per_kind_and_acknowledges_what_it_wrote(tmp_path: Path) -> None:
    inbox = FakeExchange(
        [
            _delivery(
                1, pb.ServiceReferral(referral_id="F1", unit_code="610302"), "service.referral"
            ),
            _delivery(2, pb.Alert(alert_id="A1"), kinds.ALERT),
            _delivery(
                3, pb.ServiceReferral(referral_id="F2", unit_code="610303"), "service.referral"
            ),
        ],
    )
    summary = export_inbox(
        FakeAgency(inbox), tmp_path / "out", [REFERRALS], idle_seconds=0.2, encoding="gb18030"
    )
    (path,) = summary.files
    assert path.name.startswith("referrals-") and summary.files[path] == 2
    rows = list(csv.reader(path.read_bytes().decode("gb18030").splitlines()))
    assert rows[0] == ["转介编号", "单位代码", "消息编号", "发送方", "网关接收时间"]
    assert rows[1] == [
        "F1",
        "610302",
        _delivery(1, pb.Alert(), "").mid,
        "judicial",
        "2026-03-05 14:30:00",
    ]
    # What it wrote is acknowledged (in one call or several: the reader batches by time).
    assert [i for call in inbox.acknowledged_ids for i in call] == ["d1", "d3"]
    assert summary.left_by_kind == {kinds.ALERT: 1}
    assert inbox.calls[0].cancelled.is_set()


def test_a_delivery_that_comes_back_after_export_is_not_written_twice(tmp_path: Path) -> None:
    delivery = _delivery(1, pb.ServiceReferral(referral_id="F1"), kinds.SERVICE_REFERRAL)
    export_inbox(FakeAgency(FakeExchange([delivery])), tmp_path, [REFERRALS], idle_seconds=0.2)
    again = FakeExchange([delivery])
    summary = export_inbox(FakeAgency(again), tmp_path, [REFERRALS], idle_seconds=0.2)
    assert summary.files == {} and summary.already_exported == 1
    assert again.acknowledged_ids == [["d1"]]
    assert (tmp_path / LEDGER).read_text().split() == [delivery.mid]


# --- watching a folder ----------------------------------------------------------------


def _process(path: Path) -> ImportReport:
    if path.read_text() == "broken":
        raise FileProblem(path, "missing columns 编号/record_id", line=1)
    report = ImportReport(path, "UTF-8", rows=1, accepted=[(2, "m")])
    if path.read_text() == "bad":
        report.problems.append(RowProblem(2, "单位/unit", "unknown", "INVALID"))
    return report


def _drop(folder: Path, name: str, content: str, age: float = 60) -> Path:
    path = folder / name
    path.write_text(content)
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_watched_files_move_to_done_or_failed_with_their_report(tmp_path: Path) -> None:
    _drop(tmp_path, "good.csv", "ok", age=30)
    _drop(tmp_path, "bad.csv", "bad", age=20)
    _drop(tmp_path, "broken.xlsx", "broken", age=10)
    _drop(tmp_path, "~$lock.xlsx", "ok")
    _drop(tmp_path, "notes.txt", "ok")
    _drop(tmp_path, "copying.csv", "ok", age=0)
    processed = watch(tmp_path, _process, once=True, settle_seconds=5)
    assert processed == 3
    assert (tmp_path / "done" / "good.csv").exists()
    assert not (tmp_path / "done" / "good.csv.report.csv").exists()
    assert (tmp_path / "failed" / "bad.csv").exists()
    report = (tmp_path / "failed" / "bad.csv.report.csv").read_text("utf-8-sig")
    assert "2,单位/unit,unknown,INVALID" in report
    broken = (tmp_path / "failed" / "broken.xlsx.report.csv").read_text("utf-8-sig")
    assert "1,,missing columns 编号/record_id,FILE" in broken
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "copying.csv",
        "notes.txt",
        "~$lock.xlsx",
    ]


def test_watch_stops_after_max_files_and_never_overwrites_a_done_file(tmp_path: Path) -> None:
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "a.csv").write_text("earlier")
    _drop(tmp_path, "a.csv", "ok", age=30)
    _drop(tmp_path, "b.csv", "ok", age=20)
    assert watch(tmp_path, _process, max_files=1, settle_seconds=0, poll_seconds=0) == 1
    done = sorted(p.name for p in (tmp_path / "done").iterdir())
    assert (
        len(done) == 2
        and "a.csv" in done
        and (tmp_path / "done" / "a.csv").read_text() == "earlier"
    )
    assert (tmp_path / "b.csv").exists()


def test_watch_keeps_a_file_the_gateway_could_not_take_and_raises_when_once(tmp_path: Path) -> None:
    class Down(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

    def unavailable(path: Path) -> ImportReport:
        raise Down()

    _drop(tmp_path, "a.csv", "ok")
    with pytest.raises(grpc.RpcError):
        watch(tmp_path, unavailable, once=True, settle_seconds=0)
    assert (tmp_path / "a.csv").exists()
