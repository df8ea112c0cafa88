"""The lower layers: DNS, TCP and the proxy. Each function is one layer; it returns what the
next layer needs or raises ``LayerFailed`` with the cause and the fixes.

With WA_PROXY set, the engine never resolves or dials WhatsApp itself: it resolves and dials
the proxy, and the proxy resolves the target (Go sends ``CONNECT host:443``, and its SOCKS5
dialer sends the name too), so DNS and TCP are probed towards the proxy.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Final

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError
from python_socks.async_.asyncio import Proxy

from waqr.doctor.target import ProbeTarget, ProxySpec
from waqr.doctor.verdict import LayerFailed

FIX_PROXY: Final = "set WA_PROXY to an HTTP or SOCKS5 proxy that can reach web.whatsapp.com:443"
FIX_EGRESS: Final = "open outbound TCP to port 443 (web.whatsapp.com) in the host's firewall"
# SOCKS5 reply codes (RFC 1928 §6) a proxy uses to refuse the CONNECT.
SOCKS_NOT_ALLOWED: Final = 0x02


def next_hop(target: ProbeTarget) -> tuple[str, int]:
    """The host and port this machine dials itself: the proxy's, or the target's."""
    if target.proxy is not None:
        return target.proxy.host, target.proxy.port
    return target.host, target.port


async def resolve(host: str, port: int, limit: float) -> list[str]:
    """The addresses of ``host``, in the order the system resolver gives them."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(limit):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise LayerFailed(
            "dns_unresolvable",
            f"{host} does not resolve: {exc.strerror}",
            "check the host's DNS resolver (/etc/resolv.conf) and that it can resolve public names",
            "check the spelling of the host name (WA_PROXY or WAQR_DOCTOR_HOST)",
        ) from exc
    except TimeoutError as exc:
        raise LayerFailed(
            "dns_timeout",
            f"no DNS answer for {host} within {limit:g} s",
            "check the host's DNS resolver and that outbound DNS (port 53) is allowed",
        ) from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def connect(
    addresses: list[str], port: int, limit: float, *, proxy: bool = False
) -> socket.socket:
    """A connected non-blocking socket to the first address that answers (``proxy``: these
    are the proxy's addresses, which changes the advice)."""
    fix_path = (
        "check that the proxy in WA_PROXY runs and that its address and port are right"
        if proxy
        else FIX_EGRESS
    )
    loop = asyncio.get_running_loop()
    failure: LayerFailed | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(limit):
                await loop.sock_connect(sock, (address, port))
        except ConnectionRefusedError:
            sock.close()
            failure = LayerFailed(
                "tcp_refused",
                f"{address}:{port} refused the connection (nothing listens, or a firewall "
                "rejects it)",
                "check the address and port (WA_PROXY, WAQR_DOCTOR_HOST/PORT)",
                fix_path,
            )
        except TimeoutError:
            sock.close()
            failure = LayerFailed(
                "tcp_no_answer",
                f"no answer from {address}:{port} within {limit:g} s: the packets are "
                "dropped (a firewall that drops, or a host that is down)",
                fix_path,
                FIX_PROXY,
            )
        except OSError as exc:
            sock.close()
            unreachable = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
            failure = LayerFailed(
                "tcp_unreachable" if unreachable else "tcp_error",
                f"{address}:{port}: {exc.strerror or exc}",
                "check the host's network route and firewall",
                FIX_PROXY,
            )
        else:
            return sock
    raise failure or LayerFailed("dns_unresolvable", "the name resolved to no address")


async def tunnel(proxy: ProxySpec, host: str, port: int, limit: float) -> socket.socket:
    """A socket tunnelled through ``proxy`` to host:port (HTTP CONNECT or SOCKS5).

    python-socks dials the proxy again (the TCP layer's socket only proved it answers); its
    errors carry the proxy's own answer, which is quoted.
    """
    if proxy.scheme == "https":
        raise LayerFailed(
            "proxy_scheme_unsupported",
            "the doctor cannot speak TLS to an https:// proxy; probe it as http:// to test the "
            "rest of the path",
        )
    client = Proxy.from_url(proxy.url(), rdns=True)
    try:
        sock: socket.socket = await client.connect(host, port, timeout=limit)
    except ProxyTimeoutError as exc:
        raise LayerFailed(
            "proxy_no_answer",
            f"the proxy {proxy.address} did not answer the CONNECT within {limit:g} s",
            "check that WA_PROXY points at a working proxy (scheme and port)",
        ) from exc
    except ProxyConnectionError as exc:
        raise LayerFailed(
            "proxy_unreachable", str(exc), "check the address and port in WA_PROXY"
        ) from exc
    except ProxyError as exc:
        raise _refusal(proxy, host, port, exc) from exc
    return sock


def _refusal(proxy: ProxySpec, host: str, port: int, exc: ProxyError) -> LayerFailed:
    said = str(exc)
    auth_words = ("authentication", "auth reply")
    if exc.error_code == 407 or any(word in said.lower() for word in auth_words):
        given = "with" if proxy.username is not None else "without"
        return LayerFailed(
            "proxy_auth_required",
            f"the proxy {proxy.address} demands authentication (sent {given} credentials): "
            f'"{said}"',
            "put the proxy's user and password in WA_PROXY: scheme://user:password@host:port "
            "(percent-encode special characters)",
        )
    if exc.error_code is not None or "not allowed" in said.lower():
        return LayerFailed(
            "proxy_refused",
            f'the proxy {proxy.address} refused CONNECT {host}:{port}: "{said}"',
            f"allow CONNECT to {host}:{port} in the proxy's rules",
            "use another proxy in WA_PROXY",
        )
    return LayerFailed(
        "proxy_protocol_error",
        f'the proxy {proxy.address} did not speak {proxy.scheme}: "{said}"',
        "check the scheme in WA_PROXY (http:// for an HTTP proxy, socks5:// for SOCKS5)",
    )
