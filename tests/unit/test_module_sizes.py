"""Small modules: none in ``gateway/`` or ``adapters/`` over 600 lines, no file
in ``benchmarks/`` over 800 (generated protobuf stubs aside); and the
throughput benchmark, a package of such modules, still runs as one command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMITS = {"gateway": 600, "adapters": 600, "benchmarks": 800}


@pytest.mark.parametrize("folder", sorted(LIMITS))
def test_no_module_is_over_its_folders_limit(folder: str) -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "proto/silian" not in path.as_posix()
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > LIMITS[folder]
    }
    assert too_long == {}


def test_the_throughput_benchmark_runs_as_one_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.throughput", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m benchmarks.throughput")
    assert "--soak N" in result.stdout
