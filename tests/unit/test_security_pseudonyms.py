from __future__ import annotations

import re
import uuid

import pytest

from gateway.security import new_pseudonym_key, pseudonym
from gateway.security.pseudonyms import delivery_mid

RESIDENT_ID = "11010519491231002X"


def test_pseudonym_is_stable_for_one_key() -> None:
    key = new_pseudonym_key()

    assert pseudonym(key, RESIDENT_ID) == pseudonym(key, RESIDENT_ID)


def test_pseudonym_does_not_change_between_releases() -> None:
    assert pseudonym(b"\x00" * 32, RESIDENT_ID) == "P-KESSWWYUT6S6FHNOGCTA"


def test_recipients_with_different_keys_get_unlinkable_pseudonyms() -> None:
    ngo_key, detox_key = new_pseudonym_key(), new_pseudonym_key()

    assert pseudonym(ngo_key, RESIDENT_ID) != pseudonym(detox_key, RESIDENT_ID)


def test_different_residents_get_different_pseudonyms() -> None:
    key = new_pseudonym_key()

    assert pseudonym(key, RESIDENT_ID) != pseudonym(key, "610302199001011234")


def test_lower_case_check_character_gives_the_same_pseudonym() -> None:
    key = new_pseudonym_key()

    assert pseudonym(key, RESIDENT_ID.lower()) == pseudonym(key, RESIDENT_ID)


def test_pseudonym_is_p_dash_and_twenty_base32_characters() -> None:
    assert re.fullmatch(r"P-[A-Z2-7]{20}", pseudonym(new_pseudonym_key(), RESIDENT_ID))


def test_new_pseudonym_keys_are_32_random_bytes() -> None:
    first, second = new_pseudonym_key(), new_pseudonym_key()

    assert len(first) == len(second) == 32
    assert first != second


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        pseudonym(b"short", RESIDENT_ID)


def test_a_delivery_mid_is_stable_per_recipient_and_unrelated_across_recipients() -> None:
    mid = str(uuid.uuid4())
    ngo, detox = new_pseudonym_key(), new_pseudonym_key()
    at_ngo = delivery_mid(ngo, "judicial", mid)
    assert at_ngo == delivery_mid(ngo, "judicial", mid)
    assert at_ngo not in {mid, delivery_mid(detox, "judicial", mid)}
    assert at_ngo != delivery_mid(ngo, "police", mid)
    assert uuid.UUID(at_ngo).version == 8
