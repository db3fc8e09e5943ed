"""Failed authentications are counted per caller address and minute: audited
singly once per reason, summarized in one entry, refused past a limit; and
nothing a caller sends can grow the key cache without bound."""

from __future__ import annotations

import pytest

from gateway.domain import events
from gateway.domain.errors import Overloaded, Unauthenticated
from gateway.security import generate_private_key, issue_token, kid_for, public_raw
from gateway.security.keys import CachedKeys, KeyRecord
from gateway.security.tokens import MAX_ISSUER_CHARS, verify_token
from gateway.service.unauthenticated import UnauthenticatedCalls, peer_address


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_is_audited_once_per_reason_and_summarized_once_per_minute() -> None:
    clock = Clock()
    calls = UnauthenticatedCalls(max_per_minute=10_000, clock=clock)
    singly = [calls.failed("10.0.0.7", "MALFORMED_TOKEN")[0] for _ in range(2999)]
    singly.append(calls.failed("10.0.0.7", "UNKNOWN_AGENCY")[0])
    assert singly.count(True) == 2
    assert calls.summaries() == []  # the minute is not over
    clock.now += 60
    (summary,) = calls.summaries()
    assert summary.event == events.UNAUTHENTICATED and summary.actor == "anonymous"
    assert summary.detail["peer"] == "10.0.0.7"
    assert summary.detail["calls"] == 3000 and summary.detail["not_audited_singly"] == 2998
    assert summary.detail["reasons"] == "MALFORMED_TOKEN=2999,UNKNOWN_AGENCY=1"
    assert calls.summaries() == []


def test_a_minute_of_failures_each_audited_singly_needs_no_summary() -> None:
    clock = Clock()
    calls = UnauthenticatedCalls(max_per_minute=100, clock=clock)
    calls.failed("10.0.0.7", "EXPIRED_TOKEN")
    clock.now += 61
    assert calls.summaries() == []


def test_a_peer_failing_too_often_is_refused_until_the_minute_is_over() -> None:
    clock = Clock()
    calls = UnauthenticatedCalls(max_per_minute=5, clock=clock)
    for _ in range(5):
        calls.admit("10.0.0.7")
        calls.failed("10.0.0.7", "MALFORMED_TOKEN")
    with pytest.raises(Overloaded) as refused:
        calls.admit("10.0.0.7")
    assert refused.value.reason == "TOO_MANY_FAILED_AUTHENTICATIONS"
    assert 0 < refused.value.retry_after_seconds <= 60
    calls.admit("10.0.0.8")  # another address is not affected
    clock.now += 60
    calls.admit("10.0.0.7")
    (summary,) = calls.summaries()
    assert (summary.detail["calls"], summary.detail["refused_unread"]) == (5, 1)


def test_at_most_max_peers_are_tracked_and_the_evicted_are_summarized() -> None:
    calls = UnauthenticatedCalls(max_per_minute=100, max_peers=3, clock=Clock())
    evicted = []
    for n in range(10):
        for _ in range(2):
            evicted += calls.failed(f"10.0.0.{n}", "MALFORMED_TOKEN")[1]
    assert [e.detail["peer"] for e in evicted] == [f"10.0.0.{n}" for n in range(7)]
    assert len(calls.summaries(everything=True)) == 3


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:10.0.0.7:51234", "10.0.0.7"),
        ("ipv6:[::1]:40000", "::1"),
        ("unix:/tmp/socket", "unix:/tmp/socket"),
        ("", ""),
    ],
)
def test_the_address_of_a_peer(peer: str, address: str) -> None:
    assert peer_address(peer) == address


class Source:
    def __init__(self) -> None:
        self.reads = 0

    def key(self, agency: str, kid: str) -> KeyRecord | None:
        self.reads += 1
        return None

    def agency_exists(self, agency: str) -> bool:
        self.reads += 1
        return agency == "police"


def test_the_key_cache_keeps_at_most_its_size_of_attacker_chosen_names() -> None:
    source = Source()
    cache = CachedKeys(source, ttl_seconds=60, size=100)
    for n in range(5000):
        cache.agency_exists(f"attacker-{n}")
        cache.key("police", f"kid-{n}")
    assert len(cache._agencies) == 100 and len(cache._keys) == 100
    reads = source.reads
    assert not cache.agency_exists("attacker-4999")
    assert source.reads == reads  # recently used names are still cached


def test_an_overlong_issuer_is_refused_before_any_key_lookup() -> None:
    key = generate_private_key()
    token = issue_token(
        key, kid_for(public_raw(key)), issuer="x" * (MAX_ISSUER_CHARS + 1), audience="gw"
    )
    source = Source()
    with pytest.raises(Unauthenticated) as refused:
        verify_token(token, CachedKeys(source, 60), audience="gw", leeway_seconds=0)
    assert refused.value.reason == "MALFORMED_TOKEN" and "iss" in refused.value.message
    assert source.reads == 0


def test_an_overlong_token_is_refused_unread() -> None:
    with pytest.raises(Unauthenticated) as refused:
        verify_token("a" * 100_000, CachedKeys(Source(), 60), audience="gw", leeway_seconds=0)
    assert refused.value.reason == "MALFORMED_TOKEN" and "longer" in refused.value.message
