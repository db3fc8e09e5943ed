"""Deadlines of alert disposal: how long a unit has to start verifying an alert
and to dispose of it, per alert type and severity, and how long a roster
change may take to follow a disposition that calls for one.

Configured in ``<data-dir>/disposal.toml`` (optional; the defaults below hold
for what it does not say)::

    [deadlines.OUT_OF_BOUNDS]            # every 越界 alert
    verify_hours = 4
    dispose_hours = 24

    [deadlines."OUT_OF_BOUNDS/URGENT"]   # only the urgent ones
    verify_hours = 1
    dispose_hours = 8

    [follow_up]
    absconded_hours = 24    # 脱管属实 → roster.change ABSCONDED
    sanction_hours = 72     # 训诫 / 警告 → roster.change REPRIMAND / WARNING

A type/severity entry wins over a type entry, which wins over ``default``.
The gateway's own escalations (DISPOSAL_OVERDUE, ROSTER_CHANGE_MISSING,
CAMPAIGN_UNANSWERED) have no deadline: they do not escalate themselves.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.proto.silian.v1 import payloads_pb2 as pb


@dataclass(frozen=True)
class Deadline:
    """Time from an alert (or its reopening) to verification started and to disposal."""

    verify: timedelta
    dispose: timedelta


def _hours(verify: float, dispose: float) -> Deadline:
    return Deadline(timedelta(hours=verify), timedelta(hours=dispose))


#: The shipped deadlines (hours): a new offence soonest, 越界 and 人机分离 within hours.
DEFAULTS: dict[str, Deadline] = {
    "default": _hours(24, 72),
    "NEW_OFFENCE": _hours(1, 12),
    "OUT_OF_BOUNDS": _hours(4, 24),
    "DEVICE_SEPARATION": _hours(4, 24),
    "POSSIBLE_ABSCONDING": _hours(12, 48),
    "FINDING_OVERDUE": _hours(24, 168),
}
#: Alerts the gateway raises about disposal itself: tracked, never escalated.
NO_DEADLINE = frozenset(
    {
        pb.ALERT_TYPE_DISPOSAL_OVERDUE,
        pb.ALERT_TYPE_ROSTER_CHANGE_MISSING,
        pb.ALERT_TYPE_CAMPAIGN_UNANSWERED,
    }
)
DEFAULT_ABSCONDED_HOURS = 24
DEFAULT_SANCTION_HOURS = 72


def _type_name(alert_type: int) -> str:
    return pb.AlertType.Name(alert_type).removeprefix("ALERT_TYPE_")  # type: ignore[arg-type]


def _severity_name(severity: int) -> str:
    return pb.Severity.Name(severity).removeprefix("SEVERITY_")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Deadlines:
    """The deadlines in force (defaults overridden by ``disposal.toml``)."""

    by_key: Mapping[str, Deadline] = field(default_factory=lambda: dict(DEFAULTS))
    absconded: timedelta = timedelta(hours=DEFAULT_ABSCONDED_HOURS)
    sanction: timedelta = timedelta(hours=DEFAULT_SANCTION_HOURS)

    def for_alert(self, alert_type: int, severity: int) -> Deadline | None:
        """The deadline of an alert of this type and severity (None: it has none)."""
        if alert_type in NO_DEADLINE:
            return None
        name = _type_name(alert_type)
        for key in (f"{name}/{_severity_name(severity)}", name, "default"):
            if key in self.by_key:
                return self.by_key[key]
        return None

    def scaled(self, factor: float) -> Deadlines:
        """Every deadline multiplied by ``factor`` (> 0): compressed time for a demo."""
        if factor <= 0:
            raise ValueError(f"disposal_time_scale must be positive, got {factor}")
        if factor == 1:
            return self
        return Deadlines(
            {k: Deadline(d.verify * factor, d.dispose * factor) for k, d in self.by_key.items()},
            self.absconded * factor,
            self.sanction * factor,
        )

    def follow_up(self, change_type: int) -> timedelta:
        """How long after a disposition its roster change of ``change_type`` may take."""
        return self.absconded if change_type == pb.ROSTER_CHANGE_TYPE_ABSCONDED else self.sanction

    @classmethod
    def load(cls, path: Path) -> Deadlines:
        """The defaults, overridden by ``path`` if it exists; ValueError naming the
        file and entry if it is wrong."""
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: {err}") from None
        return cls.from_mapping(data, where=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "disposal.toml") -> Deadlines:
        unknown = set(data) - {"deadlines", "follow_up"}
        if unknown:
            raise ValueError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}")
        by_key = dict(DEFAULTS)
        for key, entry in dict(data.get("deadlines", {})).items():
            _check_key(where, key)
            verify = _positive(where, f"deadlines.{key}.verify_hours", entry.get("verify_hours"))
            dispose = _positive(where, f"deadlines.{key}.dispose_hours", entry.get("dispose_hours"))
            if dispose < verify:
                raise ValueError(
                    f"{where}: deadlines.{key}: dispose_hours must not be less than verify_hours"
                )
            by_key[key] = _hours(verify, dispose)
        follow = dict(data.get("follow_up", {}))
        absconded = follow.get("absconded_hours", DEFAULT_ABSCONDED_HOURS)
        sanction = follow.get("sanction_hours", DEFAULT_SANCTION_HOURS)
        absconded = _positive(where, "follow_up.absconded_hours", absconded)
        sanction = _positive(where, "follow_up.sanction_hours", sanction)
        return cls(by_key, timedelta(hours=absconded), timedelta(hours=sanction))


def _check_key(where: str, key: str) -> None:
    if key == "default":
        return
    type_name, _, severity = key.partition("/")
    types = {_type_name(v) for v in pb.AlertType.values() if v}
    severities = {_severity_name(v) for v in pb.Severity.values() if v}
    if type_name not in types:
        raise ValueError(
            f"{where}: deadlines.{key}: unknown alert type {type_name!r} "
            f"(known: {', '.join(sorted(types))})"
        )
    if severity and severity not in severities:
        raise ValueError(
            f"{where}: deadlines.{key}: unknown severity {severity!r} "
            f"(known: {', '.join(sorted(severities))})"
        )


def _positive(where: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive number of hours, got {value!r}")
    return float(value)
