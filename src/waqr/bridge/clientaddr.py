"""Who is asking: the client address the bridge throttles and logs.

It is the TCP peer, unless the peer is one of ``WAQR_TRUSTED_PROXIES``: then it is the
right-most ``X-Forwarded-For`` entry that is not a trusted proxy itself. Each proxy appends
the address it received the request from, so everything left of the first untrusted entry
(reading from the right) was written by whoever sent the request and may be made up
(MDN, "X-Forwarded-For: Security and privacy concerns"). With no trusted proxies (the
default) the header is ignored: anyone could send it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> list[Network]:
    """``"10.0.0.1, 192.168.0.0/16"`` -> networks; a ValueError names the entry that is not an
    IP address or CIDR (addresses are not secrets, so the entry itself may be shown)."""
    networks = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or CIDR (e.g. 10.0.0.1 or 10.0.0.0/8)"
            ) from None
    return networks


def normalise_networks(spec: str) -> str:
    """The settings' validator: the same list, checked and written canonically."""
    return ",".join(str(network) for network in parse_networks(spec))


# The settings field's type: a comma-separated list of IPs/CIDRs, checked when read.
ProxyList = Annotated[str, AfterValidator(normalise_networks)]


class TrustedProxies:
    def __init__(self, spec: str) -> None:
        self.networks = parse_networks(spec)

    def __contains__(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip().strip("[]"))
        except ValueError:
            return False  # "unknown", a name, or garbage: never trusted
        return any(address in network for network in self.networks)

    def client_of(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client address for a request from ``peer`` carrying these X-Forwarded-For
        header values (in the order they came)."""
        if not self.networks or peer not in self:
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            if hop and hop not in self:
                return hop
        # Every hop is one of our proxies (or there is no header): the nearest one asked.
        return peer
