"""The connection doctor: why WhatsApp cannot be reached, layer by layer, and what to do.

target    where it aims (WhatsApp by default; settings aim it elsewhere) and the proxy
verdict   Layer, Step, Report: what was seen, the first failure, its cause and fixes
checks    configuration, and what the bot last saw (account)
network   DNS, TCP, the proxy (HTTP CONNECT, SOCKS5)
tlslayer  the TLS handshake and certificate chain (interception, clock)
chat      the WebSocket upgrade at /ws/chat and the Noise hello
probe     ``diagnose()``: all of it, bottom up, each step timed
command   ``waqr doctor``
"""

from waqr.doctor.probe import diagnose
from waqr.doctor.target import ProbeTarget
from waqr.doctor.verdict import Layer, Outcome, Report, Step

__all__ = ["Layer", "Outcome", "ProbeTarget", "Report", "Step", "diagnose"]
