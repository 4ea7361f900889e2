"""Address lists and the client behind trusted proxies: X-Forwarded-For is read from the right, and only
when the direct peer is a trusted proxy."""

import ipaddress

import pytest

from ingest.allowlist import BREVO_RANGES, AddressList, AllowlistError, client_address, parse_address

TRUSTED = AddressList.parse("10.0.0.0/8, fd00::/8")


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_lists_hold_ipv4_and_ipv6_networks_and_single_addresses() -> None:
    allowed = AddressList.parse("192.0.2.0/24 2001:db8::/32,198.51.100.7")
    assert ip("192.0.2.200") in allowed
    assert ip("2001:db8:ffff::1") in allowed
    assert ip("198.51.100.7") in allowed
    assert ip("198.51.100.8") not in allowed
    assert ip("2001:db9::1") not in allowed
    assert None not in allowed
    assert not AddressList.parse("")


def test_brevo_stands_for_brevos_webhook_ranges_only_where_aliases_are_taken() -> None:
    allowed = AddressList.parse("brevo", aliases=True)
    assert [str(n) for n in allowed.networks] == list(BREVO_RANGES)
    assert ip("1.179.127.255") in allowed
    assert ip("172.246.240.1") in allowed  # the range added in 2025
    assert ip("185.107.232.1") not in allowed  # the old range is not Brevo's any more
    with pytest.raises(AllowlistError):
        AddressList.parse("brevo")  # a proxy list has no alias


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "example.com", "1.2.3", "2001:db8::/129"])
def test_a_bad_entry_is_refused(bad: str) -> None:
    with pytest.raises(AllowlistError, match="not an IP address or CIDR"):
        AddressList.parse(f"10.0.0.0/8, {bad}", aliases=True)


def test_without_trusted_proxies_the_peer_is_the_client_and_forwarded_for_is_ignored() -> None:
    assert client_address("203.0.113.9", ["1.179.112.5"], AddressList(())) == ip("203.0.113.9")
    assert client_address("203.0.113.9", ["1.179.112.5"], TRUSTED) == ip("203.0.113.9")  # forged


def test_behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() -> None:
    assert client_address("10.0.0.1", ["1.179.112.5"], TRUSTED) == ip("1.179.112.5")
    # the client wrote the left part itself; our proxies appended the right part
    assert client_address("10.0.0.1", ["6.6.6.6, 1.179.112.5, 10.0.0.2"], TRUSTED) == ip("1.179.112.5")
    assert client_address("10.0.0.1", ["6.6.6.6", "1.179.112.5,10.0.0.2"], TRUSTED) == ip("1.179.112.5")
    assert client_address("10.0.0.1", [" [2001:db8::5] "], TRUSTED) == ip("2001:db8::5")


def test_odd_forwarded_for_values_give_no_client_rather_than_a_guess() -> None:
    assert client_address("10.0.0.1", ["1.179.112.5, not-an-ip"], TRUSTED) is None
    assert client_address("10.0.0.1", ["10.0.0.3"], TRUSTED) == ip("10.0.0.3")  # all hops ours
    assert client_address("10.0.0.1", [], TRUSTED) == ip("10.0.0.1")
    assert client_address(None, ["1.179.112.5"], TRUSTED) is None  # a Unix socket peer


def test_an_ipv4_mapped_peer_is_its_ipv4_address() -> None:
    assert parse_address("::ffff:10.0.0.1") == ip("10.0.0.1")
    assert client_address("::ffff:10.0.0.1", ["1.179.112.5"], TRUSTED) == ip("1.179.112.5")
