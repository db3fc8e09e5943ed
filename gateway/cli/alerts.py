"""``silian alerts list|show`` and ``silian police campaigns``: alert disposal
(闭环) and verification campaigns as the gateway's database records them, for
bureau staff. Gateway commands: they read the database of ``--data-dir`` (or
``SILIAN_DATABASE_URL``); the server's dependencies load only when they run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.table import Table

from gateway.cli.errors import one_line_errors
from gateway.cli.options import console
from gateway.cli.options import current_settings as _settings
from gateway.proto.silian.v1 import payloads_pb2 as pb

if TYPE_CHECKING:
    from gateway.domain.disposal import AlertCase
    from gateway.domain.units import Units

_STATES = ("RAISED", "VERIFYING", "DISPOSED", "CLOSED", "REOPENED")
_TYPES = [pb.AlertType.Name(v).removeprefix("ALERT_TYPE_") for v in pb.AlertType.values() if v]


def _short(enum: type, number: int, prefix: str) -> str:
    return enum.Name(number).removeprefix(prefix) if number else "—"  # type: ignore[attr-defined]


def _local(moment: datetime | None) -> str:
    from gateway.domain.calendar import BUREAU_TIME

    return moment.astimezone(BUREAU_TIME).strftime("%Y-%m-%d %H:%M") if moment else "—"


def _unit_code(units: Units, unit: str | None) -> str:
    """A unit given by code or by name (渭滨区) → its code; ValueError if unknown."""
    if not unit:
        return ""
    if unit in units:
        return unit
    for known in units:
        if known.name == unit:
            return known.code
    raise ValueError(f"--unit: {unit!r} is neither a configured unit code nor a unit name")


@click.group()
def alerts() -> None:
    """Alerts the gateway raised and their disposal (闭环): raised → verifying →
    disposed → closed (or reopened), with deadlines per alert type."""


@alerts.command("list")
@click.option("--unit", help="Only this unit (code such as 610302, or name such as 渭滨区).")
@click.option(
    "--type", "alert_type", type=click.Choice(_TYPES, case_sensitive=False), help="Alert type."
)
@click.option(
    "--state", type=click.Choice(_STATES, case_sensitive=False), multiple=True, help="State(s)."
)
@click.option("--overdue", is_flag=True, help="Only open alerts past a deadline.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@one_line_errors
def list_alerts(
    unit: str | None, alert_type: str | None, state: tuple[str, ...], overdue: bool, limit: int
) -> None:
    """List alerts, newest last: unit, type, state, deadlines and the officer of
    the last step. Exit status 0 even when none match."""
    from gateway import bootstrap
    from gateway.store import disposal

    settings = _settings()
    units = bootstrap.load_units(settings)
    code = _unit_code(units, unit)
    number = pb.AlertType.Value(f"ALERT_TYPE_{alert_type.upper()}") if alert_type else 0
    now = datetime.now(UTC)
    store = bootstrap.open_store(settings)
    with store.transaction() as session:
        found = [
            case
            for case in disposal.cases(
                session, unit_code=code, alert_type=number, states=[s.upper() for s in state]
            )
            if not overdue or case.overdue(now)
        ]
    shown = found[-limit:]
    table = Table(title=f"alerts: {len(found)} found, {len(shown)} shown")
    table.add_column("alert", no_wrap=True, min_width=36)  # to copy into `alerts show`
    for column in ("unit", "type", "raised", "state", "verify by", "dispose by", "officer"):
        table.add_column(column)
    for case in shown:
        late = case.overdue(now)
        table.add_row(
            case.alert_id,
            units.name(case.unit_code) if case.unit_code in units else case.unit_code,
            _short(pb.AlertType, case.alert_type, "ALERT_TYPE_"),
            _local(case.raised_at),
            f"[red]{case.state} (overdue)[/red]" if late else str(case.state),
            _local(case.verify_due),
            _local(case.dispose_due),
            case.officer or "—",
        )
    console.print(table)


@alerts.command("show")
@click.argument("alert_id")
@one_line_errors
def show_alert(alert_id: str) -> None:
    """Everything the gateway keeps about one alert's disposal."""
    from gateway import bootstrap
    from gateway.store import disposal

    store = bootstrap.open_store(_settings())
    with store.transaction() as session:
        case = disposal.load_case(session, alert_id)
    if case is None:
        raise click.ClickException(f"no alert {alert_id!r} was raised by this gateway")
    for label, value in _details(case):
        console.print(f"[bold]{label:<22}[/bold] {value}")


def _details(case: AlertCase) -> list[tuple[str, str]]:
    expected = (
        f"{_short(pb.RosterChangeType, case.expected_change, 'ROSTER_CHANGE_TYPE_')} by "
        f"{_local(case.expected_by)} ({'settled' if case.expected_done else 'awaited'})"
        if case.expected_change
        else "—"
    )
    in_time = {None: "—", True: "yes", False: "no (late)"}[case.disposed_in_time]
    kind = _short(pb.AlertType, case.alert_type, "ALERT_TYPE_")
    severity = _short(pb.Severity, case.severity, "SEVERITY_")
    escalated = [
        name
        for name, done in (
            ("verification", case.escalated_verify),
            ("disposal", case.escalated_dispose),
        )
        if done
    ]
    return [
        ("alert", f"{case.alert_id} (message {case.mid})"),
        ("type / severity", f"{kind} / {severity}"),
        ("unit", case.unit_code),
        ("state", str(case.state) + (" (overdue)" if case.overdue(datetime.now(UTC)) else "")),
        ("raised", _local(case.raised_at)),
        ("verify by / verified", f"{_local(case.verify_due)} / {_local(case.verified_at)}"),
        ("dispose by / disposed", f"{_local(case.dispose_due)} / {_local(case.disposed_at)}"),
        ("disposed in time", in_time),
        ("closed", _local(case.closed_at)),
        ("method", _short(pb.VerificationMethod, case.method, "VERIFICATION_METHOD_")),
        ("finding", _short(pb.DispositionFinding, case.finding, "DISPOSITION_FINDING_")),
        ("action", _short(pb.DispositionAction, case.action, "DISPOSITION_ACTION_")),
        ("officer (last step)", case.officer or "—"),
        ("last step", f"{_local(case.last_step_at)} (message {case.last_mid or '—'})"),
        ("reopened", str(case.reopened)),
        ("roster change expected", expected),
        ("escalated", ", ".join(escalated) or "—"),
    ]


@click.command("campaigns")
@click.option("--unit", help="Only this unit (code or name).")
@one_line_errors
def campaigns(unit: str | None) -> None:
    """Verification campaigns (核查专项) the bureau sent the police: people asked,
    answered for, hits, completion and state (OPEN, COMPLETE, or OVERDUE: past
    the deadline with people unanswered). A gateway command: reads the database."""
    from gateway import bootstrap
    from gateway.reporting.disposal import CampaignFigures, share_text
    from gateway.store import disposal

    settings = _settings()
    units = bootstrap.load_units(settings)
    code = _unit_code(units, unit)
    now = datetime.now(UTC)
    store = bootstrap.open_store(settings)
    with store.transaction() as session:
        found = [CampaignFigures.of(c, now) for c in disposal.campaigns(session, unit_code=code)]
    table = Table(title=f"verification campaigns: {len(found)}")
    headers = ("request", "unit", "requested", "deadline", "asked", "answered", "hits")
    for column in (*headers, "completion", "state"):
        table.add_column(column)
    for c in found:
        table.add_row(
            c.request_id,
            units.name(c.unit) if c.unit in units else c.unit,
            _local(c.requested_at),
            _local(c.deadline),
            str(c.asked),
            str(c.answered),
            str(c.hits),
            share_text(c.completion),
            f"[red]{c.state}[/red]" if c.state == "OVERDUE" else c.state,
        )
    console.print(table)
