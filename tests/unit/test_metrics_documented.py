"""Every metric the gateway exports is documented in the README and drawn on the
shipped Grafana dashboard, and the dashboard is valid JSON."""

from __future__ import annotations

import json
from pathlib import Path

from gateway import metrics

ROOT = Path(__file__).resolve().parents[2]


def _exported() -> set[str]:
    names = set()
    for family in metrics.REGISTRY.collect():
        suffix = "_total" if family.type == "counter" else ""
        names.add(family.name + suffix)
    return names


def test_every_metric_is_documented_and_on_the_dashboard() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    dashboard = json.loads((ROOT / "deploy/grafana/silian.json").read_text(encoding="utf-8"))
    queries = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    exported = _exported()
    assert len(exported) >= 15
    assert sorted(n for n in exported if f"`{n}`" not in readme) == []
    assert sorted(n for n in exported if n not in queries) == []
