"""Where a webhook may come from: CIDR lists, Brevo's ranges, and the client behind trusted proxies."""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Brevo's webhook source ranges (../shared/spec/BREVO.md, section 1): `172.246.240.0/20` was added in
# 2025. The older `185.107.232.0/24` some code still allows is left out; list it to keep it.
BREVO_RANGES = ("1.179.112.0/20", "172.246.240.0/20")
ALIASES = {"brevo": BREVO_RANGES}


class AllowlistError(ValueError):
    """An address list that does not parse."""


def parse_address(text: str) -> Address | None:
    """An IP address as a header or a peer gives it (`[::1]` brackets allowed), None when it is not one."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # `[2001:db8::1]` or `[2001:db8::1]:443`
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # `::ffff:1.2.3.4` from a dual-stack socket is 1.2.3.4
    return address


@dataclass(frozen=True, slots=True)
class AddressList:
    """A list of IPv4 and IPv6 networks; an address is in it when one of them holds it."""

    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, text: str, *, aliases: bool = False) -> "AddressList":
        """Networks separated by commas or spaces: `10.0.0.0/8, 2001:db8::/32, 192.0.2.7, brevo`.

        With `aliases`, `brevo` stands for Brevo's webhook ranges.
        """
        networks: list[Network] = []
        for item in text.replace(",", " ").split():
            alias = ALIASES.get(item.lower()) if aliases else None
            for cidr in alias or (item,):
                try:
                    networks.append(ipaddress.ip_network(cidr, strict=False))
                except ValueError as error:
                    raise AllowlistError(f"not an IP address or CIDR network: {cidr!r}") from error
        return cls(tuple(networks))

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return any(address in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)


NO_ADDRESSES = AddressList(())


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: AddressList) -> Address | None:
    """The client's address: the direct peer, or behind trusted proxies the first untrusted hop.

    `X-Forwarded-For` (all its headers, in order) is read only when the peer is a trusted proxy, and
    from the right: each proxy appends the address it got the request from, so the hops right of the
    first untrusted one are ours and the ones left of it are whatever the client wrote. A forged
    header from an untrusted peer is never read. An unparsable hop ends the walk: None, no address.
    """
    address = parse_address(peer) if peer else None
    if address is None or address not in trusted:
        return address
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None or address not in trusted:
            return address
    return address  # every hop is a trusted proxy: the leftmost one made the request
