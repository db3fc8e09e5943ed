"""``silian report``: one self-contained HTML page of what the database holds."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.testing import enrolment, referral, resident_id, verification_hit
from tests.e2e.conftest import Running
from tests.helpers import receive_mids


def _run(settings: Settings, *args: str) -> click.testing.Result:
    return CliRunner().invoke(
        main,
        ["--data-dir", str(settings.data_dir), *args],
        env={
            "SILIAN_DATABASE_URL": settings.database_url,
            "SILIAN_BROKER_PREFIX": settings.broker_prefix,
            "SILIAN_AMQP_URL": settings.amqp_url,
        },
        catch_exceptions=False,
    )


@pytest.fixture(scope="module")
def exchanged(running: Running) -> Running:
    """A few messages of three linkages, delivered and acknowledged."""
    judicial, police = running.client("judicial"), running.client("police")
    person = resident_id("610303")
    enrolled = judicial.submit("roster.change", enrolment(person, unit="610303")).mid
    referred = judicial.submit("service.referral", referral(person)).mid
    checked = police.submit("verification.result", verification_hit(person)).mid
    inboxes = {
        "police": [enrolled],
        "procuratorate": [enrolled],
        "ngo": [referred],
        "judicial": [checked],
    }
    for agency, mids in inboxes.items():
        client: AgencyClient = running.client(agency)
        receive_mids(client, mids)
        client.close()
    judicial.close()
    police.close()
    return running


def test_report_is_one_self_contained_page(exchanged: Running, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = _run(exchanged.settings, "report", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"<script|<link|<img|@import|url\(|\b(src|href)=", page)
    assert set(re.findall(r"https?://[^\"' ]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert page.count("<table>") >= 5 and "<svg" in page
    for heading in (
        "Messages by linkage and kind",
        "Alerts by type and unit",
        "Inspection findings",
        "Partner services by type",
        "Police checks",
        "Delivery latency",
    ):
        assert heading in page
    assert "verification.result" in page and "judicial → police" in page


def test_report_of_one_unit_holds_only_its_messages(exchanged: Running, tmp_path: Path) -> None:
    out = tmp_path / "unit.html"
    result = _run(exchanged.settings, "report", "--unit", "610303", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "金台区" in page and "roster.change" in page
    assert "verification.result" not in page


def test_unknown_unit_is_refused_with_the_valid_ones(exchanged: Running, tmp_path: Path) -> None:
    result = _run(exchanged.settings, "report", "--unit", "999999", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "999999" in result.output and "610371" in result.output and "610302" in result.output
    assert not (tmp_path / "x").exists()
