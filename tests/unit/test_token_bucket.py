"""The refused callers' token buckets: bursts, refill, the RateLimit headers, bounded memory."""

import ipaddress

import pytest

from ingest.ratelimit import RateLimit, RateLimitError, TokenBuckets, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_takes_a_burst_of_the_limit_then_refuses_with_the_wait() -> None:
    clock = Clock()
    buckets = TokenBuckets(RateLimit(3, 30.0), clock=clock)  # a token back every 10 s
    verdicts = [buckets.take("192.0.2.1") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    refused = verdicts[-1]
    assert refused.headers() == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "30",
        "Retry-After": "10",
    }
    assert "Retry-After" not in verdicts[0].headers()
    assert buckets.exhausted("192.0.2.1")
    assert not buckets.exhausted("192.0.2.2")  # another address has its own bucket


def test_tokens_come_back_at_the_rate_and_never_past_the_limit() -> None:
    clock = Clock()
    buckets = TokenBuckets(RateLimit(3, 30.0), clock=clock)
    for _ in range(3):
        buckets.take("a")
    clock.now += 9.9
    assert not buckets.take("a").allowed
    clock.now += 10.2  # 20.1 s since it was emptied; the refused take spent nothing
    assert buckets.take("a").allowed
    clock.now += 3600
    assert buckets.take("a").remaining == 2  # full again (3), less this one


def test_memory_is_bounded_and_the_least_recently_seen_address_goes_first() -> None:
    buckets = TokenBuckets(RateLimit(1, 60.0), max_clients=3, clock=Clock())
    for key in ("a", "b", "c"):
        buckets.take(key)
    buckets.take("a")  # seen again: now the most recent
    buckets.take("d")
    assert len(buckets) == 3
    assert buckets.exhausted("a")
    assert not buckets.exhausted("b")  # forgotten: a fresh, full bucket
    assert buckets.exhausted("c")


def test_ipv6_clients_are_grouped_by_slash_64() -> None:
    one = client_key(ipaddress.ip_address("2001:db8:1:2::1"))
    same = client_key(ipaddress.ip_address("2001:db8:1:2:ffff::9"))
    other = client_key(ipaddress.ip_address("2001:db8:1:3::1"))
    assert one == same == "2001:db8:1:2::/64"
    assert other != one
    assert client_key(ipaddress.ip_address("192.0.2.7")) == "192.0.2.7"
    assert client_key(None) == "unknown"


def test_rate_limits_parse_as_requests_per_seconds() -> None:
    assert RateLimit.parse("1000/900") == RateLimit(1000, 900.0)
    assert RateLimit.parse(" ") is None
    assert RateLimit(1000, 900.0).per_second == pytest.approx(1.111, abs=1e-3)
    for bad in ("1000", "a/900", "0/900", "10/0", "10/-1", "10/inf"):
        with pytest.raises(RateLimitError):
            RateLimit.parse(bad)
