"""``silian demo``: a small period end to end, checked against the database."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from gateway import bootstrap
from gateway.cli import main
from gateway.config import Settings
from gateway.store.models import AlertCaseRow, CampaignRow, OutboxRow, StoredMessage


def _run(settings: Settings, *args: str) -> click.testing.Result:
    return CliRunner().invoke(
        main,
        ["--data-dir", str(settings.data_dir), "--log-format", "console", *args],
        env={
            "SILIAN_DATABASE_URL": settings.database_url,
            "SILIAN_BROKER_PREFIX": settings.broker_prefix,
            "SILIAN_AMQP_URL": settings.amqp_url,
        },
        catch_exceptions=False,
    )


@pytest.fixture(scope="module")
def demo(settings: Settings) -> click.testing.Result:
    return _run(settings, "demo", "--people", "200", "--days", "3", "--seed", "11")


def test_small_demo_succeeds_and_verifies_the_audit_log(demo: click.testing.Result) -> None:
    assert demo.exit_code == 0, demo.output
    assert "every message accepted, delivered and acknowledged" in demo.output
    assert re.search(r"verified offline: OK: \d+ entries and \d+ checkpoints verify", demo.output)


def test_the_demo_runs_over_mtls_with_a_ca_in_its_data_directory(
    settings: Settings, demo: click.testing.Result
) -> None:
    assert "over mTLS" in demo.output
    folder = settings.data_dir / "tls"
    assert {p.stem for p in folder.glob("*.pem")} >= {"ca", "gateway", "judicial", "police"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.glob("*.key"))


def test_summary_agrees_with_the_database(settings: Settings, demo: click.testing.Result) -> None:
    found = re.search(
        r"In all: (\d+) messages accepted, (\d+) deliveries, (\d+) acknowledged, (\d+) alerts",
        demo.output,
    )
    assert found, demo.output
    accepted, deliveries, acknowledged, alerts = map(int, found.groups())
    store = bootstrap.open_store(settings)
    inbox = OutboxRow.destination == "inbox"
    with store.transaction() as session:
        assert accepted == session.scalar(select(func.count()).select_from(StoredMessage))
        assert deliveries == session.scalar(select(func.count()).where(inbox))
        assert acknowledged == session.scalar(
            select(func.count()).where(inbox, OutboxRow.acknowledged_at.is_not(None))
        )
        assert alerts == session.scalar(select(func.count()).where(StoredMessage.kind == "alert"))
    store.engine.dispose()
    assert acknowledged == deliveries
    assert accepted > 200  # the roster alone is 200 enrolments


def test_every_linkage_shows_in_the_summary(demo: click.testing.Result) -> None:
    for route in (
        "judicial → police",
        "judicial → procuratorate",
        "judicial → ngo",
        "judicial → detox",
        "police → judicial",
        "procuratorate → judicial",
        "ngo → judicial",
        "detox → judicial",
    ):
        assert route in demo.output
    for table in ("Inspection findings", "Partner services by type", "Delivery latency"):
        assert table in demo.output


def test_demo_writes_the_report_and_the_audit_export(
    settings: Settings, demo: click.testing.Result
) -> None:
    assert demo.exit_code == 0
    report = (settings.data_dir / "report.html").read_text()
    assert "Messages by linkage and kind" in report
    assert "Alert disposal (闭环)" in report and "Verification campaigns (核查专项)" in report
    assert (settings.data_dir / "audit-export" / "checkpoint").exists()


def test_the_summary_shows_disposal_and_campaigns_as_the_database_records_them(
    settings: Settings, demo: click.testing.Result
) -> None:
    disposal = re.search(r"闭环 alert disposal: (\d+) alerts, 处置率 disposal rate", demo.output)
    campaigns = re.search(
        r"核查专项 verification campaigns: (\d+), completion [\d.]+% \((\d+) of (\d+) people",
        demo.output,
    )
    assert disposal and campaigns, demo.output
    store = bootstrap.open_store(settings)
    with store.transaction() as session:
        cases = session.scalar(select(func.count()).select_from(AlertCaseRow))
        asked = sum(len(c.asked) for c in session.scalars(select(CampaignRow)))
        requests = session.scalar(
            select(func.count()).where(StoredMessage.kind == "verification.request")
        )
    store.engine.dispose()
    assert int(disposal.group(1)) == cases
    assert int(campaigns.group(1)) == requests >= 1
    assert int(campaigns.group(3)) == asked


def test_demo_options_out_of_range_are_refused(settings: Settings) -> None:
    result = _run(settings, "demo", "--people", "5")
    assert result.exit_code == 2
    assert "--people" in result.output


def test_a_second_run_into_the_same_database_succeeds(settings: Settings) -> None:
    again = _run(settings, "demo", "--people", "100", "--days", "2", "--seed", "11")
    assert again.exit_code == 0, again.output
