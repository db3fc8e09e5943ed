"""The period's figures on the console, as an operator reads them after the demo."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from gateway.reporting.period import FINDING_STATES, PeriodSummary

#: Failures (refused messages and the like) listed before the rest are only counted.
SHOWN_FAILURES = 10


def show(
    console: Console,
    summary: PeriodSummary,
    failures: list[str],
    missing: dict[str, int],
    linkages: list[str],
) -> None:
    """Print every table of ``summary``, then ``failures`` (refused messages, failed
    inboxes or rules) and ``missing`` deliveries per recipient, if any."""
    flows = Table(
        "linkage",
        "kind",
        "route",
        "messages",
        "deliveries",
        "acked",
        title="Messages by linkage and kind",
    )
    for flow in summary.flows:
        flows.add_row(
            flow.linkage,
            flow.kind,
            flow.route,
            str(flow.messages),
            str(flow.deliveries),
            str(flow.acknowledged),
        )
    flows.add_section()
    flows.add_row("total", "", "", str(summary.accepted), str(summary.deliveries), "")
    console.print(flows)
    alerts = Table("alert type", "unit", "alerts", title="Alerts by type and unit")
    for (alert_type, unit), count in sorted(summary.alerts.items()):
        alerts.add_row(alert_type, summary.unit_name(unit), str(count))
    console.print(alerts)
    if not summary.alerts:
        rules = ", ".join(linkages) or "none installed"
        console.print(f"  no alerts raised (linkage rules: {rules})")
    states = summary.findings_by_state()
    findings = Table(*FINDING_STATES, title="Inspection findings")
    findings.add_row(*(str(states[s]) for s in FINDING_STATES))
    console.print(findings)
    services = Table(
        "service type",
        "provider",
        "event",
        "records",
        "attendance",
        title="Partner services by type",
    )
    for (service_type, provider, event), count in sorted(summary.services.items()):
        attendance = summary.attendance[(service_type, provider, event)]
        services.add_row(service_type, provider, event, str(count), str(attendance))
    console.print(services)
    checks = Table(
        "check", "outcome", "where", "results", title="Police checks (hits and anomalies)"
    )
    no_hit = 0
    for (check, outcome, where), count in sorted(summary.checks.items()):
        if outcome == "NO_HIT":
            no_hit += count
        else:
            checks.add_row(check, outcome, where, str(count))
    checks.add_section()
    checks.add_row("all checks", "NO_HIT", "", str(no_hit))
    console.print(checks)
    if summary.latency:
        latency = summary.latency
        console.print(
            f"[bold]Delivery latency[/bold] (accepted → handed to the recipient, "
            f"{latency.count} deliveries): p50 {latency.p50:.2f} s, p90 {latency.p90:.2f} s, "
            f"p99 {latency.p99:.2f} s, max {latency.max:.2f} s",
            soft_wrap=True,
        )
    if summary.checkpoint:
        point = summary.checkpoint
        console.print(
            f"[bold]Audit[/bold]: last checkpoint covers {point.size} entries "
            f"(root {point.root_hex[:16]}…); verified offline: {summary.verified}",
            soft_wrap=True,
        )
    acknowledged = sum(f.acknowledged for f in summary.flows)
    console.print(
        f"[bold]In all[/bold]: {summary.accepted} messages accepted, {summary.deliveries} "
        f"deliveries, {acknowledged} acknowledged, {sum(summary.alerts.values())} alerts",
        highlight=False,
        soft_wrap=True,
    )
    for line in failures[:SHOWN_FAILURES]:
        console.print(f"[red]failed[/red]: {line}", highlight=False, soft_wrap=True)
    if len(failures) > SHOWN_FAILURES:
        console.print(f"[red]… and {len(failures) - SHOWN_FAILURES} more failures[/red]")
    for agency, count in sorted(missing.items()):
        console.print(f"[red]missing[/red]: {count} deliveries to {agency} not acknowledged")
