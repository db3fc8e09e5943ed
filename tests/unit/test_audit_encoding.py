import hashlib
import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.log import encode_entry, leaf_hash
from gateway.domain.events import AuditEvent


def test_entry_bytes_are_canonical_json() -> None:
    event = AuditEvent(
        "accepted",
        "judicial",
        mid="m1",
        kind="roster.change",
        detail={"sha256": "ab", "recipients": "police"},
    )
    entry = encode_entry(7, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), event)
    assert entry == (
        b'{"actor":"judicial","detail":{"recipients":"police","sha256":"ab"},'
        b'"event":"accepted","index":7,"kind":"roster.change","mid":"m1",'
        b'"time":"2026-01-02T03:04:05.000006Z","v":1}'
    )
    assert json.loads(entry)["index"] == 7


def test_leaf_hash_is_rfc9162_leaf() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert leaf_hash(b"abc") != hashlib.sha256(b"abc").digest()


_text = st.text(max_size=40)


@given(
    index=st.integers(min_value=0, max_value=2**53),
    event=_text,
    actor=_text,
    mid=_text,
    kind=_text,
    detail=st.dictionaries(_text, st.one_of(_text, st.integers())),
)
def test_entry_bytes_are_exactly_the_documented_json(
    index: int, event: str, actor: str, mid: str, kind: str, detail: dict[str, str | int]
) -> None:
    time = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    document = {
        "v": 1,
        "index": index,
        "time": "2026-01-02T03:04:05.000006Z",
        "event": event,
        "actor": actor,
        "mid": mid,
        "kind": kind,
        "detail": detail,
    }
    documented = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    entry = encode_entry(index, time, AuditEvent(event, actor, mid, kind, detail))
    assert entry == documented.encode()
