"""County-level units (县级单位) of Baoji, read from configuration.

Units are data: the shipped default is ``gateway/domain/defaults/units.toml``; a
deployment puts its own ``units.toml`` in the data directory
(``Units.for_data_dir``). The file format::

    region_prefix = "6103"      # division-code prefix of the city (宝鸡市)

    [[units]]
    code = "610302"             # 6-digit division code used as unit_code
    name = "渭滨区"
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).with_name("defaults") / "units.toml"
#: Name of a deployment's own units file in the data directory.
DATA_DIR_FILE = "units.toml"

_CODE = re.compile(r"\d{6}")
_PREFIX = re.compile(r"\d{2,6}")
_TOP_KEYS = frozenset({"region_prefix", "units"})
_UNIT_KEYS = frozenset({"code", "name"})


@dataclass(frozen=True)
class Unit:
    """One county-level unit: its 6-digit code and its name."""

    code: str
    name: str


class Units:
    """The configured units, in file order, and the city they belong to."""

    def __init__(self, units: list[Unit], region_prefix: str) -> None:
        self._units = {unit.code: unit for unit in units}
        self.region_prefix = region_prefix

    @classmethod
    def load(cls, path: Path) -> Units:
        """Read ``path``; ValueError naming the file and the problem if malformed."""
        try:
            with path.open("rb") as handle:
                document = tomllib.load(handle)
            return cls._parse(document)
        except ValueError as exc:
            raise ValueError(f"units file {path}: {exc}") from None

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> Units:
        """The data directory's ``units.toml`` if there is one, else the default."""
        path = data_dir / DATA_DIR_FILE
        return cls.load(path) if path.exists() else cls.default()

    @classmethod
    def default(cls) -> Units:
        """The units shipped with the gateway (Baoji's 13 county-level units)."""
        return cls.load(DEFAULT_FILE)

    @classmethod
    def _parse(cls, document: dict[str, Any]) -> Units:
        unknown = set(document) - _TOP_KEYS
        if unknown:
            raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
        prefix = document.get("region_prefix")
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise ValueError("region_prefix must be a string of 2 to 6 digits, e.g. '6103'")
        entries = document.get("units")
        if not isinstance(entries, list) or not entries:
            raise ValueError("needs at least one [[units]] entry")
        units = [_parse_unit(index, entry) for index, entry in enumerate(entries)]
        seen: set[str] = set()
        for unit in units:
            if unit.code in seen:
                raise ValueError(f"unit code {unit.code} appears more than once")
            seen.add(unit.code)
        return cls(units, prefix)

    def __contains__(self, code: object) -> bool:
        return code in self._units

    def __iter__(self) -> Iterator[Unit]:
        return iter(self._units.values())

    def __len__(self) -> int:
        return len(self._units)

    def codes(self) -> list[str]:
        """Unit codes in file order."""
        return list(self._units)

    def name(self, code: str) -> str:
        """Name of the unit ``code``; KeyError if it is not a configured unit."""
        try:
            return self._units[code].name
        except KeyError:
            raise KeyError(f"unknown unit code {code!r}") from None

    def in_region(self, region_code: str) -> bool:
        """Whether the 6-digit division code ``region_code`` lies in the city.

        True for a configured unit (including locally coded ones such as the
        high-tech zone) and for any code starting with ``region_prefix``.
        ValueError if ``region_code`` is not 6 digits.
        """
        if not _CODE.fullmatch(region_code):
            raise ValueError(f"region code must be 6 digits, got {region_code!r}")
        return region_code in self._units or region_code.startswith(self.region_prefix)


def _parse_unit(index: int, entry: object) -> Unit:
    where = f"units[{index}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a table with code and name")
    unknown = set(entry) - _UNIT_KEYS
    if unknown:
        raise ValueError(f"{where} has unknown keys {', '.join(sorted(unknown))}")
    code, name = entry.get("code"), entry.get("name")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError(f"{where}: code must be a string of 6 digits, got {code!r}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where} ({code}): name must be a non-empty string")
    return Unit(code=code, name=name)
