"""``silian report``: the period as one self-contained HTML page.

Inline CSS and inline SVG bar charts only — no scripts, fonts or images from
anywhere — so the file can be mailed to a bureau head or archived with an
audit bundle and still open years later.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from pathlib import Path

from gateway.reporting.disposal import UnitDisposal, minutes_text, share_text
from gateway.reporting.period import FINDING_STATES, PeriodSummary
from gateway.security.files import create_private

_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",system-ui,sans-serif;margin:0;
  background:#f4f5f7;color:#1f2933}
header{background:#17324d;color:#fff;padding:24px 40px}
header h1{margin:0 0 6px;font-size:24px}
header p{margin:2px 0;color:#c9d6e3;font-size:14px}
main{padding:24px 40px;max-width:1200px}
section{background:#fff;border-radius:8px;padding:18px 24px;margin:0 0 20px;
  box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:18px;margin:0 0 12px;color:#17324d}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:20px}
.card{background:#fff;border-radius:8px;padding:12px 18px;min-width:140px;
  box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card b{display:block;font-size:24px;color:#17324d}
.card span{font-size:12px;color:#52606d}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.charts{display:flex;flex-direction:column;gap:12px}
table{border-collapse:collapse;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #e4e7eb;text-align:left}
th{background:#f0f4f8;color:#334e68}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.state-closed{color:#2f8132}.state-overdue{color:#c0392b;font-weight:bold}
.state-open{color:#b7791f}.state-rectified{color:#2b6cb0}
.ok{color:#2f8132;font-weight:bold}.bad{color:#c0392b;font-weight:bold}
section p{font-size:14px}
.muted{color:#7b8794;font-size:13px}
code{font-size:12px;word-break:break-all}
"""
_COLOURS = {
    "messages": "#2b6cb0",
    "alerts": "#c0392b",
    "findings": "#b7791f",
    "services": "#2f8132",
    "checks": "#6b46c1",
    "disposal": "#2c7a7b",
}
_STATE_COLOURS = {
    "open": "#d69e2e",
    "rectified": "#3182ce",
    "overdue": "#c53030",
    "closed": "#38a169",
}


def write_report(summary: PeriodSummary, path: Path) -> Path:
    """Write the report of ``summary`` to ``path``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    create_private(path).write_text(render(summary), encoding="utf-8")
    return path


def render(summary: PeriodSummary) -> str:
    """The whole HTML page."""
    body = "".join(
        (
            _header(summary),
            "<main>",
            _cards(summary),
            _messages(summary),
            _alerts(summary),
            _disposal(summary),
            _campaigns(summary),
            _findings(summary),
            _services(summary),
            _checks(summary),
            _delivery_and_audit(summary),
            "</main>",
        )
    )
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>四联 Silian report {summary.generated_at:%Y-%m-%d}</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "—"


def _header(summary: PeriodSummary) -> str:
    scope = (
        f"unit {escape(summary.unit_name(summary.unit))} ({escape(summary.unit)})"
        if summary.unit
        else f"all {len(summary.units)} units of Baoji"
    )
    return (
        "<header><h1>宝鸡市社区矫正 四联 Silian — exchange report</h1>"
        f"<p>{scope}; messages accepted {_when(summary.first_accepted)} – "
        f"{_when(summary.last_accepted)}</p>"
        f"<p>generated {_when(summary.generated_at)} from the gateway's database</p></header>"
    )


def _cards(summary: PeriodSummary) -> str:
    states = summary.findings_by_state()
    acked = sum(f.acknowledged for f in summary.flows)
    share = f"{acked / summary.deliveries:.1%}" if summary.deliveries else "—"
    latency = f"{summary.latency.p90:.2f} s" if summary.latency else "—"
    cards = (
        ("messages accepted", f"{summary.accepted:,}"),
        ("deliveries acknowledged", share),
        ("alerts raised", f"{sum(summary.alerts.values()):,}"),
        ("disposal rate 处置率", share_text(summary.disposal.total.rate)),
        (
            "findings overdue / open",
            f"{states['overdue']} / {states['open'] + states['rectified']}",
        ),
        ("partner services", f"{sum(summary.services.values()):,}"),
        ("delivery latency p90", latency),
    )
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'
            for label, value in cards
        )
        + "</div>"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell:,}</td>'
            if isinstance(cell, int)
            else f"<td>{escape(str(cell))}</td>"
            for cell in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bar_chart(items: Sequence[tuple[str, int]], colour: str | Sequence[str], title: str) -> str:
    """A horizontal bar chart as inline SVG (labels left, values right of the bars);
    ``colour`` is one for every bar or one per bar."""
    if not items:
        return ""
    label_width, bar_width, row = 230, 300, 24
    top = max(value for _, value in items) or 1
    height = row * len(items) + 8
    bars = []
    for index, (label, value) in enumerate(items):
        y = 4 + index * row
        width = max(bar_width * value / top, 1)
        bars.append(
            f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{width:.1f}" height="{row - 8}" '
            f'rx="3" fill="{colour if isinstance(colour, str) else colour[index]}"/>'
            f'<text x="{label_width + width + 6:.1f}" y="{y + 16}">{value:,}</text>'
        )
    total = label_width + bar_width + 70
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height}" '
        f'viewBox="0 0 {total} {height}" role="img" aria-label="{escape(title)}" '
        'font-size="12" fill="#1f2933">'
        f"<title>{escape(title)}</title>{''.join(bars)}</svg>"
    )


def _section(title: str, table: str, *charts: str) -> str:
    """A titled box: the table, and the charts stacked beside it (below when narrow)."""
    column = f'<div class="charts">{"".join(charts)}</div>' if any(charts) else ""
    return f'<section><h2>{escape(title)}</h2><div class="row">{table}{column}</div></section>'


def _partner(summary: PeriodSummary, partner: str) -> str:
    return summary.partner_names.get(partner, partner)


def _messages(summary: PeriodSummary) -> str:
    rows = [
        (
            _partner(summary, f.linkage),
            f.kind,
            f.route,
            f.messages,
            f.deliveries,
            f.acknowledged,
        )
        for f in summary.flows
    ]
    rows.append(
        (
            "total",
            "",
            "",
            summary.accepted,
            summary.deliveries,
            sum(f.acknowledged for f in summary.flows),
        )
    )
    chart = bar_chart(
        summary.by_kind.most_common(), _COLOURS["messages"], "Messages accepted by kind"
    )
    return _section(
        "Messages by linkage and kind",
        _table(("linkage", "kind", "route", "messages", "deliveries", "acknowledged"), rows),
        chart,
    )


def _alerts(summary: PeriodSummary) -> str:
    if not summary.alerts:
        return _section(
            "Alerts by type and unit", '<p class="muted">No alerts were raised in this period.</p>'
        )
    rows = [
        (alert_type, summary.unit_name(unit), count)
        for (alert_type, unit), count in sorted(summary.alerts.items())
    ]
    by_unit: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for (alert_type, unit), count in summary.alerts.items():
        by_unit[summary.unit_name(unit)] += count
        by_type[alert_type] += count
    return _section(
        "Alerts by type and unit",
        _table(("alert type", "unit", "alerts"), rows),
        bar_chart(by_type.most_common(), _COLOURS["alerts"], "Alerts by type")
        + bar_chart(by_unit.most_common(), _COLOURS["alerts"], "Alerts by unit"),
    )


def _disposal_row(summary: PeriodSummary, figures: UnitDisposal) -> tuple[object, ...]:
    return (
        summary.unit_name(figures.unit) if figures.unit else "all units",
        figures.raised,
        figures.due,
        figures.in_time,
        share_text(figures.rate),
        minutes_text(figures.median_verify),
        minutes_text(figures.median_dispose),
        figures.open,
        figures.overdue,
        figures.reopened,
    )


def _disposal(summary: PeriodSummary) -> str:
    figures = summary.disposal
    if not figures.total.raised:
        return _section(
            "Alert disposal (闭环)", '<p class="muted">No alert was raised in this period.</p>'
        )
    rows = [_disposal_row(summary, unit) for unit in figures.units]
    rows.append(_disposal_row(summary, figures.total))
    rates = [
        (summary.unit_name(u.unit), round(100 * u.rate))
        for u in figures.units
        if u.rate is not None
    ]
    open_alerts = [(summary.unit_name(u.unit), u.open) for u in figures.units if u.open]
    table = _table(
        (
            "unit",
            "alerts raised",
            "due",
            "disposed in time",
            "处置率",
            "median to verification",
            "median to disposal",
            "open",
            "overdue",
            "reopened",
        ),
        rows,
    )
    note = (
        '<p class="muted">处置率: alerts disposed within their deadline ÷ alerts disposed or '
        "past their disposal deadline (deadlines per alert type: disposal.toml).</p>"
    )
    return _section(
        "Alert disposal (闭环)",
        f"<div>{table}{note}</div>",
        bar_chart(rates, _COLOURS["disposal"], "Disposal rate by unit (%)"),
        bar_chart(open_alerts, _COLOURS["alerts"], "Open alerts by unit"),
    )


def _campaigns(summary: PeriodSummary) -> str:
    campaigns = summary.disposal.campaigns
    if not campaigns:
        return _section(
            "Verification campaigns (核查专项)",
            '<p class="muted">No verification request was sent in this period.</p>',
        )
    rows = [
        (
            c.request_id,
            summary.unit_name(c.unit),
            _when(c.requested_at),
            _when(c.deadline),
            c.asked,
            c.answered,
            c.hits,
            share_text(c.completion),
            c.state,
        )
        for c in campaigns
    ]
    completion = [(c.request_id, round(100 * c.completion)) for c in campaigns]
    return _section(
        "Verification campaigns (核查专项)",
        _table(
            (
                "request",
                "unit",
                "requested",
                "deadline",
                "asked",
                "answered",
                "hits",
                "completion",
                "state",
            ),
            rows,
        ),
        bar_chart(completion, _COLOURS["checks"], "Campaign completion (%)"),
    )


def _findings(summary: PeriodSummary) -> str:
    states = summary.findings_by_state()
    chart = bar_chart(
        [(state, states[state]) for state in FINDING_STATES],
        [_STATE_COLOURS[state] for state in FINDING_STATES],
        "Findings by state",
    )
    rows = "".join(
        f"<tr><td>{escape(f.finding_id)}</td><td>{escape(summary.unit_name(f.unit))}</td>"
        f"<td>{escape(f.category)}</td><td>{escape(f.issued)}</td><td>{escape(f.deadline)}</td>"
        f'<td class="state-{f.state}">{escape(f.state)}</td></tr>'
        for f in summary.findings
    )
    table = (
        "<table><thead><tr><th>finding</th><th>unit</th><th>category</th><th>issued</th>"
        f"<th>deadline</th><th>state</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return _section("Inspection findings (执法监督)", table, chart)


def _services(summary: PeriodSummary) -> str:
    rows = [
        (service_type, _partner(summary, provider), event, count, summary.attendance[key])
        for key, count in sorted(summary.services.items())
        for service_type, provider, event in [key]
    ]
    by_type: Counter[str] = Counter()
    for (service_type, _provider, _event), count in summary.services.items():
        by_type[service_type] += count
    return _section(
        "Partner services by type (帮扶)",
        _table(("service type", "provider", "event", "records", "attendance"), rows),
        bar_chart(by_type.most_common(), _COLOURS["services"], "Service records by type"),
    )


def _checks(summary: PeriodSummary) -> str:
    hits = [
        (check, outcome, where or "—", count)
        for (check, outcome, where), count in sorted(summary.checks.items())
        if outcome != "NO_HIT"
    ]
    no_hit = sum(c for (_, outcome, _), c in summary.checks.items() if outcome == "NO_HIT")
    by_check: Counter[str] = Counter()
    for check, _outcome, where, count in hits:
        by_check[f"{check} {where}" if where != "—" else check] += count
    return _section(
        "Police checks (信息核查): hits and anomalies",
        _table(
            ("check", "outcome", "where", "results"), [*hits, ("all checks", "NO_HIT", "", no_hit)]
        ),
        bar_chart(by_check.most_common(), _COLOURS["checks"], "Hits and anomalies by check"),
    )


def _delivery_and_audit(summary: PeriodSummary) -> str:
    latency = summary.latency
    latency_table = (
        _table(
            ("deliveries", "p50", "p90", "p99", "max"),
            [
                (
                    latency.count,
                    f"{latency.p50:.2f} s",
                    f"{latency.p90:.2f} s",
                    f"{latency.p99:.2f} s",
                    f"{latency.max:.2f} s",
                )
            ],
        )
        if latency
        else '<p class="muted">Nothing was delivered.</p>'
    )
    point = summary.checkpoint
    verdict_class = "ok" if summary.verified.startswith("OK") else "bad"
    audit = (
        "<div><p>Last signed checkpoint: "
        f"<b>{point.size:,}</b> of {point.log_size:,} log entries, {_when(point.created_at)}<br>"
        f"root <code>{point.root_hex}</code></p>"
        + (
            f'<p>Verified offline: <span class="{verdict_class}">'
            f"{escape(summary.verified)}</span></p>"
            if summary.verified
            else '<p class="muted">Verify it with <code>silian audit export</code> and '
            "<code>silian audit verify</code>.</p>"
        )
        + f"<p>Deliveries not yet acknowledged: <b>{summary.undelivered:,}</b></p></div>"
        if point
        else '<p class="muted">No audit checkpoint yet.</p>'
    )
    return _section(
        "Delivery latency (accepted → handed to the recipient) and audit",
        f"<div>{latency_table}</div>{audit}",
    )
