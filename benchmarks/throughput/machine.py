"""The machine and the processes on it, from /proc: memory, CPU time, the
services' versions."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pika
from sqlalchemy import create_engine, text

import gateway

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB (empty once it is gone)."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live process below it (the workers of ``serve --workers N``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and every live process below it."""
    return sum(cpu_seconds(member) for member in process_tree(pid))


def tree_rss_kb(pid: int) -> int | None:
    """VmRSS of ``pid`` and every live process below it; None once ``pid`` is gone."""
    own = proc_status(pid).get("VmRSS")
    if own is None:
        return None
    return own + sum(proc_status(child).get("VmRSS", 0) for child in process_tree(pid)[1:])


def service_cpu_seconds() -> dict[str, float]:
    """CPU seconds of PostgreSQL and RabbitMQ: every live process of theirs plus
    what their exited children used (a backend that ends moves its time into the
    postmaster's reaped-children counters, so the sum only grows)."""
    totals = {"postgres": 0.0, "rabbitmq": 0.0}
    stats: dict[int, tuple[str, int, list[str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        stats[int(entry.name)] = (comm, int(fields[1]), fields)
    for comm, parent, fields in stats.values():
        name = (
            "postgres" if comm.startswith("postgres") else "rabbitmq" if comm == "beam.smp" else ""
        )
        if not name:
            continue
        ticks = int(fields[11]) + int(fields[12])
        if stats.get(parent, ("",))[0] != comm:  # the top process: add its reaped children
            ticks += int(fields[13]) + int(fields[14])
        totals[name] += ticks / CLOCK_TICKS
    return totals


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def cpu_shares(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """CPU % (100 = one core) per component over ``wall`` seconds, from two readings
    of CPU seconds that include the whole machine's (``machine``); "other" is
    everything else on the machine (another test run would show there)."""
    used = {k: after[k] - before[k] for k in after}
    machine_total = used.pop("machine")
    used["other"] = max(0.0, machine_total - sum(used.values()))
    return {k: 100 * v / wall for k, v in used.items()}


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores, load, CPU, memory, the gateway's revision."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) // 1024
    code = Path(gateway.__file__).resolve().parent.parent  # the gateway the harness runs
    revision = str(code)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        described = subprocess.run(
            ["git", "-C", str(code), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        revision = f"{described} ({code})" if described else revision
    return {
        "nproc": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_model": model,
        "revision": revision,
        "memory_mb": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def service_versions(postgres_url: str, amqp_url: str) -> dict[str, str]:
    """PostgreSQL's and RabbitMQ's versions (whichever answers)."""
    versions = {}
    with contextlib.suppress(Exception):
        engine = create_engine(postgres_url)
        with engine.connect() as connection:
            versions["postgresql"] = str(connection.execute(text("SHOW server_version")).scalar())
        engine.dispose()
    with contextlib.suppress(Exception):
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        props = connection._impl.server_properties
        version = props.get("version", b"")
        versions["rabbitmq"] = version.decode() if isinstance(version, bytes) else str(version)
        connection.close()
    return versions


class RssSampler:
    """Samples the gateway's VmRSS (with its workers') every ``interval`` seconds on a thread."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.phase = "start"
        self.samples: list[tuple[float, str, int]] = []  # (monotonic, phase, kB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = tree_rss_kb(self.pid)
            if rss is None:
                return
            self.samples.append((time.monotonic(), self.phase, rss))
            self._stop.wait(self.interval)

    def now_kb(self) -> int:
        return tree_rss_kb(self.pid) or 0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def of_phase(self, phase: str) -> list[int]:
        return [kb for _, p, kb in self.samples if p == phase]
