"""neonize's generated protobuf classes, imported without importing ``neonize``.

Importing ``neonize`` loads its Go shared library (and may try to download it), which the
simulator must never do. The generated modules import each other as top-level packages
(``from waAdv import ...``), so their folder goes on ``sys.path`` - the same trick
``neonize/proto/__init__.py`` uses - and they are imported under the same module names, so a
process that also imports neonize shares them instead of registering descriptors twice (doc §11).

This is the only module of ``waqr.sim`` that touches those generated modules.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any


def neonize_proto_dir() -> Path:
    """Folder of neonize's generated protobuf packages, found without executing neonize."""
    spec = importlib.util.find_spec("neonize")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("neonize is not installed; waqr.sim needs its generated protobuf modules")
    return Path(next(iter(spec.submodule_search_locations))) / "proto"


_PROTO_DIR = str(neonize_proto_dir())
if _PROTO_DIR not in sys.path:
    # Appended, not prepended: these folder names (waE2E, waAdv, ...) must not shadow anything.
    sys.path.append(_PROTO_DIR)

from waAdv import WAAdv_pb2 as _adv  # noqa: E402
from waCert import WACert_pb2 as _cert  # noqa: E402
from waCompanionReg import WACompanionReg_pb2 as _companion_reg  # noqa: E402
from waE2E import WAWebProtobufsE2E_pb2 as _e2e  # noqa: E402
from waWa6 import WAWebProtobufsWa6_pb2 as _wa6  # noqa: E402

# The generated classes carry no types usable under mypy --strict, hence Any.
HandshakeMessage: Any = _wa6.HandshakeMessage
ClientPayload: Any = _wa6.ClientPayload
CertChain: Any = _cert.CertChain
ADVDeviceIdentity: Any = _adv.ADVDeviceIdentity
ADVSignedDeviceIdentity: Any = _adv.ADVSignedDeviceIdentity
ADVSignedDeviceIdentityHMAC: Any = _adv.ADVSignedDeviceIdentityHMAC
ADV_E2EE: int = _adv.E2EE
ADV_HOSTED: int = _adv.HOSTED
DeviceProps: Any = _companion_reg.DeviceProps
ClientPairingProps: Any = _companion_reg.ClientPairingProps
Message: Any = _e2e.Message

__all__ = [
    "ADV_E2EE",
    "ADV_HOSTED",
    "ADVDeviceIdentity",
    "ADVSignedDeviceIdentity",
    "ADVSignedDeviceIdentityHMAC",
    "CertChain",
    "ClientPairingProps",
    "ClientPayload",
    "DeviceProps",
    "HandshakeMessage",
    "Message",
    "neonize_proto_dir",
]
