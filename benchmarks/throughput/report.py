"""The figures as tables and the verdicts on the issue's targets."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.throughput.harness import Harness

#: The targets of issue 3.
TARGET_STREAM_E2E = 3000.0
TARGET_UNARY = 1000.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 6.0
TARGET_RSS_MB = 300.0


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if value else "—"


def fmt_ms(value: float) -> str:
    return "—" if value != value else f"{value * 1000:.1f}"


def report_tables(
    console: Console,
    figures: dict[str, dict[str, Any]],
    harnesses: list[Harness],
    host: dict[str, Any],
) -> None:
    """Per database, a table of the phases and notes on RSS, ratio, errors and
    the profile; then the machine."""
    for harness in harnesses:
        if not harness.results:
            continue
        table = Table(
            title=f"{harness.database} — gateway as its own process", title_justify="left"
        )
        for column, justify in (
            ("phase", "left"),
            ("accepted/sent", "right"),
            ("accepted msg/s", "right"),
            ("e2e msg/s", "right"),
            ("deliveries", "right"),
            ("dups", "right"),
            ("p50 ms", "right"),
            ("p99 ms", "right"),
            ("max ms", "right"),
            ("RSS MB min–max", "right"),
            ("CPU % gw / load / cons / pg / mq / other", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for r in harness.results.values():
            cpu = r.cpu
            table.add_row(
                r.name,
                f"{r.accepted:,}/{r.sent:,}" + ("" if r.sent == r.messages else "*"),
                fmt_rate(r.accept_rate),
                fmt_rate(r.e2e_rate),
                f"{r.delivered:,}/{r.deliveries:,}",
                str(r.duplicates),
                fmt_ms(r.percentile(50)) if r.latencies else "",
                fmt_ms(r.percentile(99)) if r.latencies else "",
                fmt_ms(max(r.latencies)) if r.latencies else "",
                f"{min(r.rss_kb, default=0) / 1024:.0f}–{max(r.rss_kb, default=0) / 1024:.0f}",
                " / ".join(
                    f"{cpu.get(k, 0):.0f}"
                    for k in ("gateway", "load", "consumer", "postgres", "rabbitmq", "other")
                ),
            )
        console.print(table)
        f = figures[harness.database]
        peak = f["peak_rss_mb"]
        console.print(
            f"  peak gateway RSS (VmHWM) {peak:.0f} MB; RSS through each run (MB): "
            + "; ".join(f"{k} {v}" for k, v in f["rss_series_mb"].items())
        )
        if "ratio_stream_to_naive" in f:
            console.print(f"  stream e2e ÷ naive e2e = {f['ratio_stream_to_naive']:.1f}×")
        if f.get("soak_rss_mb_by_accepted"):
            console.print(
                "  soak RSS (accepted → MB): "
                + ", ".join(f"{n:,}→{mb}" for n, mb in f["soak_rss_mb_by_accepted"])
            )
        extra = []
        if f["consumer_errors"]:
            extra.append(f"consumer errors {f['consumer_errors']}")
        if f["deliveries_not_from_load"]:
            extra.append(f"deliveries from other senders {f['deliveries_not_from_load']}")
        if f["redelivered"]:
            extra.append(f"redelivered flags {f['redelivered']}")
        for run in f["gateway_runs"]:
            levels = {
                k: v
                for k, v in run.get("log_levels", {}).items()
                if k in ("warning", "error", "critical")
            }
            if levels or run.get("exit_code") not in (0, None):
                extra.append(
                    f"gateway ({run['settings']}) exit {run.get('exit_code')}, log {levels}"
                )
        for line in extra:
            console.print(f"  [yellow]{line}[/]")
        for phase, prof in harness.profile.items():
            console.print(
                f"  py-spy over the {phase} phase ({prof['seconds']} s, {prof['file']}): "
                f"the GIL was held {prof['gil']:g} % of the time; % = share of the phase:"
            )
            for title, key, top in (
                ("threads", "threads", 8),
                ("gateway functions (incl. callees)", "gateway_functions", 16),
                ("leaf functions", "leaf_functions", 10),
            ):
                console.print(
                    f"    {title}: " + ", ".join(f"{n} {v:g}" for n, v in prof[key][:top])
                )
    console.print(
        f"machine: {host['nproc']} × {host['cpu_model']}, {host['memory_mb']:,} MB, "
        f"load average at start {host['load_average_at_start'][0]}, code {host['revision']}, "
        f"Linux {host['kernel']}, Python {host['python']}, "
        + ", ".join(f"{k} {v}" for k, v in host.get("services", {}).items())
    )


def verdicts(
    figures: dict[str, dict[str, Any]], soak: bool, rate_seconds: float
) -> list[tuple[str, bool | None, str]]:
    """(target, met — None when not measured —, the figures behind it) per target."""

    def phase(db: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = figures.get(db, {}).get("phases", {}).get(name) or {}
        return found

    lines: list[tuple[str, bool | None, str]] = []
    dbs = [db for db in ("sqlite", "postgresql") if db in figures]
    if not soak:
        stream = phase("postgresql", "stream")
        if stream:
            value = stream["e2e_messages_per_second"]
            others = "; ".join(
                f"{db} {phase(db, 'stream')['e2e_messages_per_second']:,.0f}"
                for db in dbs
                if db != "postgresql" and phase(db, "stream")
            )
            lines.append(
                (
                    f"≥ {TARGET_STREAM_E2E:,.0f} msg/s e2e via SubmitStream on PostgreSQL",
                    value >= TARGET_STREAM_E2E,
                    f"{value:,.0f} msg/s" + (f" ({others})" if others else ""),
                )
            )
        else:
            lines.append(
                (
                    f"≥ {TARGET_STREAM_E2E:,.0f} msg/s e2e via SubmitStream on PostgreSQL",
                    None,
                    "PostgreSQL not run",
                )
            )
        parts, met = [], []
        for db in dbs:
            rate, top = phase(db, "unary@rate"), phase(db, "unary max")
            if rate and top:
                p99 = rate["latency_ms"]["p99"]
                ok = top["accepted_per_second"] >= TARGET_UNARY and p99 < TARGET_P99_MS
                met.append(ok)
                parts.append(
                    f"{db} {top['accepted_per_second']:,.0f} msg/s max, p99 {p99:,.1f} ms "
                    f"at {rate['messages_planned'] / rate_seconds:,.0f} msg/s offered "
                    f"({rate['accepted']:,} of {rate['messages_planned']:,} accepted)"
                )
        lines.append(
            (
                f"≥ {TARGET_UNARY:,.0f} msg/s unary, p99 < {TARGET_P99_MS:.0f} ms at 500 msg/s",
                all(met) if met else None,
                "; ".join(parts),
            )
        )
        below = [
            f"{db} p50 {b['latency_ms']['p50']:,.1f} ms, p99 {b['latency_ms']['p99']:,.1f} ms "
            f"at {b['messages_planned'] / rate_seconds:,.0f} msg/s offered"
            for db in dbs
            if (b := phase(db, "unary@below"))
        ]
        if below:
            lines.append(("(for reference) unary latency below capacity", None, "; ".join(below)))
        parts, met = [], []
        for db in dbs:
            ratio = figures[db].get("ratio_stream_to_naive")
            if ratio:
                met.append(ratio >= TARGET_RATIO)
                parts.append(
                    f"{db} {ratio:.1f}× ({phase(db, 'stream')['e2e_messages_per_second']:,.0f}"
                    f" ÷ {phase(db, 'naive')['e2e_messages_per_second']:,.0f})"
                )
        lines.append(
            (
                f"≥ {TARGET_RATIO:.0f}× the naive path (stream e2e ÷ naive e2e)",
                all(met) if met else None,
                "; ".join(parts),
            )
        )
    parts, met = [], []
    for db in dbs:
        peak = figures[db]["peak_rss_mb"]
        met.append(peak < TARGET_RSS_MB)
        series = figures[db].get("soak_rss_mb_by_accepted")
        if series and len(series) >= 3:
            tenth = series[len(series) // 10][1]
            parts.append(
                f"{db} peak {peak:.0f} MB, {tenth:.0f}→{series[-1][1]:.0f} MB "
                f"from {series[len(series) // 10][0]:,} to {series[-1][0]:,} accepted"
            )
        else:
            parts.append(f"{db} peak {peak:.0f} MB")
    note = "" if soak else " (flatness over 1,000,000: run --soak)"
    lines.append(
        (
            f"gateway RSS < {TARGET_RSS_MB:.0f} MB{' and flat' if soak else ''}",
            all(met) if met else None,
            "; ".join(parts) + note,
        )
    )
    return lines
