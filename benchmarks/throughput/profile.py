"""``--profile``: the gateway recorded by py-spy during a phase, and where its
Python time went."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

#: py-spy samples per second (--profile).
PROFILE_RATE = 100


class Profiler:
    """Records the gateway with py-spy (the GIL holder only) during a phase into
    ``directory`` (``--profile DIR``), one file per database and phase."""

    def __init__(self, directory: Path, database: str) -> None:
        self.directory = directory
        self.database = database

    def path(self, phase: str) -> Path:
        name = phase.replace("@", "-at-").replace(" ", "-")
        return self.directory / f"{self.database}-{name}.txt"

    def start(self, pid: int, phase: str) -> subprocess.Popen[bytes]:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        out = self.path(phase)
        out.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(PROFILE_RATE),
                "--threads",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                "--gil",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(
        self, recording: subprocess.Popen[bytes], phase: str, seconds: float
    ) -> dict[str, Any] | None:
        """End the recording of ``phase`` (``seconds`` long); its summary, if
        py-spy wrote one."""
        recording.send_signal(signal.SIGINT)
        try:
            recording.wait(60)
        except subprocess.TimeoutExpired:
            recording.kill()
            recording.wait()
        out = self.path(phase)
        return summarize_profile(out, seconds) if out.exists() else None


def summarize_profile(path: Path, seconds: float, rate: int = PROFILE_RATE) -> dict[str, Any]:
    """Where the gateway's threads were active, from a py-spy raw (collapsed) profile.

    py-spy samples only the thread holding the GIL (``--gil``), so the shares
    are of the phase's wall time and add up to how busy the gateway's one
    Python core was (``gil``; 100 = never idle): per thread (numbered pool
    threads summed), per gateway function including what it calls, and per
    leaf function."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        threads[thread.rstrip("0123456789").rstrip("_-") or thread] += count
        if len(frames) > 1:
            own[_frame(frames[-1])] += count
        for name in {_frame(f) for f in frames[1:] if "gateway/" in f}:
            inclusive[name] += count
    possible = max(seconds * rate, 1.0)

    def share(counter: Counter[str], top: int) -> list[tuple[str, float]]:
        return [(name, round(100 * n / possible, 1)) for name, n in counter.most_common(top)]

    return {
        "seconds": round(seconds, 1),
        "gil": round(100 * sum(threads.values()) / possible, 1),
        "threads": share(threads, 10),
        "gateway_functions": share(inclusive, 25),
        "leaf_functions": share(own, 15),
        "file": str(path),
    }


def _frame(frame: str) -> str:
    """'fn (path/to/module.py:123)' -> 'fn (module.py)'."""
    name, _, where = frame.partition(" (")
    module = where.rstrip(")").rsplit("/", 1)[-1].split(":")[0]
    return f"{name} ({module})" if module else name
