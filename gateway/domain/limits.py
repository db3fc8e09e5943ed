"""Size limits of payload fields: one message fails alone.

Every string field of a payload has a maximum length (in characters) and every
repeated field a maximum number of entries, wherever it appears. A payload
over a limit is refused (INVALID_ARGUMENT, ``PAYLOAD_INVALID``) naming each
field at fault, before any other rule or look-up runs, so an oversized
message costs the gateway little and never reaches the database. The README
("Limits") lists the same figures.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway.domain.errors import FieldViolation
from gateway.domain.fields import RECORD_IDS, UNIT_CODES_AND_DATES

#: Identifiers and references (record ids, message ids, pseudonyms, ID numbers).
MAX_ID = 64
#: Codes, dates and bands (unit codes, ISO dates, "30-39").
MAX_CODE = 16
#: Names and short labels (a person's name, a provider, a place).
MAX_NAME = 200
#: Free text (notes, reasons, findings, descriptions).
MAX_TEXT = 4000

#: The maximum length of each string field, by field name. A string field not
#: listed (a kind an adapter adds) may hold MAX_TEXT characters.
FIELD_LENGTHS: dict[str, int] = {
    **dict.fromkeys(
        (
            *RECORD_IDS,
            "disposition_id",
            "police_reference",
            "evidence_mids",
            "evidence_refs",
            "subject_pseudonyms",
            "resident_id",
            "pseudonym",
        ),
        MAX_ID,
    ),
    **dict.fromkeys(
        (*UNIT_CODES_AND_DATES, "place_region_code", "birth_date", "age_band"),
        MAX_CODE,
    ),
    **dict.fromkeys(("name", "provider", "officer", "place", "destination"), MAX_NAME),
    **dict.fromkeys(
        (
            "address",
            "offence",
            "reason",
            "notes",
            "details",
            "finding",
            "legal_basis",
            "recommendation",
            "actions",
            "description",
        ),
        MAX_TEXT,
    ),
}

#: The maximum number of entries of each repeated field, by field name; a
#: repeated field not listed may hold DEFAULT_MAX_ENTRIES.
FIELD_ENTRIES: dict[str, int] = {
    "subjects": 500,
    "subject_pseudonyms": 500,
    "evidence_mids": 100,
    "evidence_refs": 100,
    "needs": 32,
    "check_types": 32,
}
DEFAULT_MAX_ENTRIES = 100


def max_length(field: FieldDescriptor) -> int:
    return FIELD_LENGTHS.get(field.name, MAX_TEXT)


def max_entries(field: FieldDescriptor) -> int:
    return FIELD_ENTRIES.get(field.name, DEFAULT_MAX_ENTRIES)


def violations(message: Message, prefix: str = "payload.") -> list[FieldViolation]:
    """Every field of ``message`` (at any depth) over its limit; empty if none."""
    return list(_violations(message, prefix))


def _violations(message: Message, prefix: str) -> Iterator[FieldViolation]:
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        items = value if field.is_repeated else [value]
        if field.is_repeated and len(items) > max_entries(field):
            yield FieldViolation(
                path, f"lists {len(items)} entries; at most {max_entries(field)} are allowed"
            )
            continue
        for index, item in enumerate(items):
            where = f"{path}[{index}]" if field.is_repeated else path
            if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
                if len(item) > max_length(field):
                    yield FieldViolation(
                        where,
                        f"is {len(item)} characters long; at most {max_length(field)} are allowed",
                    )
            elif field.type == FieldDescriptor.TYPE_MESSAGE and not _is_map(field):
                yield from _violations(item, f"{where}.")


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry
