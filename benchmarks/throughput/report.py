"""The figures as tables and the verdicts on the issue's targets."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.throughput.harness import Harness

#: The targets of issue 14 (reported, never asserted).
TARGET_STREAM_E2E = 1000.0
TARGET_UNARY = 500.0
TARGET_CPU_MS = 0.5
TARGET_LOW_P50_MS = 10.0
TARGET_LOW_P99_MS = 50.0
TARGET_LOW_DELIVERY_P50_MS = 50.0
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
            ("deliv p50/p99 ms", "right"),
            ("gw CPU ms/msg", "right"),
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
                f"{fmt_ms(r.percentile(50, r.delivery_latencies))}/"
                f"{fmt_ms(r.percentile(99, r.delivery_latencies))}"
                if r.delivery_latencies
                else "",
                f"{r.gateway_cpu_ms_per_message:.2f}" if r.accepted else "",
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
    del rate_seconds  # the phases' own figures say what was offered

    def phase(db: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = figures.get(db, {}).get("phases", {}).get(name) or {}
        return found

    lines: list[tuple[str, bool | None, str]] = []
    dbs = [db for db in ("sqlite", "postgresql") if db in figures]

    def per_db(target: str, name: str, value: Any, ok: Any, text: Any) -> None:
        met, parts = [], []
        for db in dbs:
            found = phase(db, name)
            if found and value(found) is not None:
                met.append(bool(ok(value(found))) if db == "postgresql" or len(dbs) == 1 else True)
                parts.append(f"{db} {text(found)}")
        lines.append((target, all(met) if met else None, "; ".join(parts) or "not run"))

    if not soak:
        per_db(
            f"SubmitStream e2e ≥ {TARGET_STREAM_E2E:,.0f} msg/s on PostgreSQL",
            "stream",
            lambda f: f["e2e_messages_per_second"],
            lambda v: v >= TARGET_STREAM_E2E,
            lambda f: f"{f['e2e_messages_per_second']:,.0f} msg/s",
        )
        per_db(
            f"gateway CPU ≤ {TARGET_CPU_MS} ms per message in the stream phase on PostgreSQL",
            "stream",
            lambda f: f.get("gateway_cpu_ms_per_message"),
            lambda v: v <= TARGET_CPU_MS,
            lambda f: f"{f['gateway_cpu_ms_per_message']:.2f} ms",
        )
        per_db(
            f"unary, 64 in flight ≥ {TARGET_UNARY:,.0f} msg/s on PostgreSQL",
            "unary max",
            lambda f: f["accepted_per_second"],
            lambda v: v >= TARGET_UNARY,
            lambda f: f"{f['accepted_per_second']:,.0f} msg/s",
        )
        per_db(
            f"at low load: accept p50 ≤ {TARGET_LOW_P50_MS:.0f} ms, p99 ≤ "
            f"{TARGET_LOW_P99_MS:.0f} ms; accepted → recipient p50 ≤ "
            f"{TARGET_LOW_DELIVERY_P50_MS:.0f} ms (PostgreSQL)",
            "low",
            lambda f: (f.get("latency_ms"), f.get("delivery_latency_ms")),
            lambda v: (
                v[0] is not None
                and v[1] is not None
                and v[0]["p50"] <= TARGET_LOW_P50_MS
                and v[0]["p99"] <= TARGET_LOW_P99_MS
                and v[1]["p50"] <= TARGET_LOW_DELIVERY_P50_MS
            ),
            lambda f: (
                (
                    f"accept p50 {f['latency_ms']['p50']:.1f} / "
                    f"p99 {f['latency_ms']['p99']:.1f} ms, "
                    f"delivery p50 {f['delivery_latency_ms']['p50']:.1f} / "
                    f"p99 {f['delivery_latency_ms']['p99']:.1f} ms"
                )
                if f.get("latency_ms") and f.get("delivery_latency_ms")
                else "no latencies"
            ),
        )
        ratios = [
            f"{db} {figures[db]['ratio_stream_to_naive']:.1f}×"
            for db in dbs
            if figures[db].get("ratio_stream_to_naive")
        ]
        if ratios:
            lines.append(("(for reference) stream e2e ÷ naive e2e", None, "; ".join(ratios)))
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


def replica_line(figures: dict[str, Any], workers: list[int]) -> str:
    """End-to-end msg/s of the stream phase per worker count, and the gain over the first."""
    phases = figures.get("phases", {})
    rates = [
        (n, phases[f"stream ×{n}"]["e2e_messages_per_second"])
        for n in workers
        if f"stream ×{n}" in phases
    ]
    if not rates:
        return "replicas: no stream phase completed"
    base = rates[0][1] or 1.0
    return "replicas (PostgreSQL, SubmitStream e2e): " + "; ".join(
        f"{n} × serve: {rate:,.0f} msg/s ({rate / base:.2f}×)" for n, rate in rates
    )
