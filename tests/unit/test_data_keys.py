"""The data key: AES-256-GCM bound to the row, files 0600, rotation keeps old keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.security.atrest import DataKeys, SealedDataError


def test_a_value_opens_only_for_its_own_row_and_unaltered(tmp_path: Path) -> None:
    keys = DataKeys.load_or_create(tmp_path / "data")
    sealed = keys.seal(b"110101199003070011", "messages/judicial/m-1")

    assert b"110101199003070011" not in sealed
    assert keys.open(sealed, "messages/judicial/m-1") == b"110101199003070011"
    with pytest.raises(SealedDataError):
        keys.open(sealed, "messages/judicial/m-2")
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealedDataError):
        keys.open(altered, "messages/judicial/m-1")


def test_key_files_are_0600_and_rotation_keeps_older_keys(tmp_path: Path) -> None:
    keys = DataKeys.load_or_create(tmp_path / "data")
    first = keys.current
    old = keys.seal(b"x", "row")
    second = keys.rotate()

    assert second != first and keys.current == second
    assert keys.key_of(keys.seal(b"x", "row")) == second
    assert DataKeys.load_or_create(tmp_path / "data").open(old, "row") == b"x"
    for path in (tmp_path / "data").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_missing_key_says_to_restore_it_from_the_backup(tmp_path: Path) -> None:
    keys = DataKeys.load_or_create(tmp_path / "data")
    sealed = keys.seal(b"x", "row")
    (tmp_path / "data" / f"{keys.current}.key").unlink()

    with pytest.raises(SealedDataError, match="restore keys/data/ from the backup"):
        DataKeys.load_or_create(tmp_path / "data")
    with pytest.raises(SealedDataError, match="is missing"):
        DataKeys(tmp_path / "data").open(sealed, "row")
