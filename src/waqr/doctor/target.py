"""Where the doctor aims: WhatsApp by default, anything else (the simulator, a local fault
server) through settings. Nothing in the probe knows about the simulator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

from waqr.settings import Settings
from waqr.waproto.certchain import WHATSAPP_ROOT_KEY

WS_PATH: Final = "/ws/chat"
WS_ORIGIN: Final = "https://web.whatsapp.com"  # what the client sends (doc §2)


@dataclass(frozen=True)
class ProxySpec:
    scheme: str  # http, https, socks5, socks5h
    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def address(self) -> str:
        """host:port with the scheme: safe to print (never the credentials)."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self) -> str:
        """The URL python-socks wants (socks5h is its socks5 with remote names)."""
        scheme = "socks5" if self.scheme.startswith("socks5") else "http"
        auth = f"{self.username}:{self.password}@" if self.username is not None else ""
        return f"{scheme}://{auth}{self.host}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> ProxySpec:
        parts = urlsplit(url)
        if not parts.hostname or parts.port is None:
            raise ValueError("WA_PROXY needs scheme://host:port")
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password or "") if user is not None else None
        return cls(parts.scheme, parts.hostname, parts.port, user, password)


@dataclass(frozen=True)
class ProbeTarget:
    host: str
    port: int
    root_key: bytes  # the Noise root the server's certificate chain must lead to
    ca_bundle: Path | None  # None: the system trust store (OpenSSL honours SSL_CERT_FILE)
    proxy: ProxySpec | None
    step_timeout: float  # each network step
    noise_timeout: float  # waiting for ServerHello after ClientHello

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_settings(cls, settings: Settings) -> ProbeTarget:
        root = (
            bytes.fromhex(settings.doctor_root_key)
            if settings.doctor_root_key
            else WHATSAPP_ROOT_KEY
        )
        return cls(
            host=settings.doctor_host,
            port=settings.doctor_port,
            root_key=root,
            ca_bundle=settings.doctor_ca_bundle,
            proxy=ProxySpec.parse(settings.wa_proxy) if settings.wa_proxy else None,
            step_timeout=settings.doctor_timeout,
            noise_timeout=settings.doctor_noise_timeout,
        )
