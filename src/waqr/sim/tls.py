"""Throwaway X.509 material for the front door: a test CA and a ``web.whatsapp.com`` leaf.

The engine dials ``wss://web.whatsapp.com/ws/chat`` and verifies the TLS certificate like any Go
program; starting it with ``SSL_CERT_FILE=<ca_cert_path>`` makes it trust exactly this CA
(doc §2: Go on Linux honours ``SSL_CERT_FILE``). A second, never-trusted CA signs an otherwise
identical leaf, which is what a TLS-intercepting middlebox looks like to the client.

Files live under ``<state_dir>/tls`` and are reused across runs, so a bot started with the CA path
keeps working after the simulator restarts. Private keys are written with mode 0600.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES: Final = ("web.whatsapp.com",)  # the only host the client dials (doc §2)
CA_LIFETIME: Final = dt.timedelta(days=3650)
LEAF_LIFETIME: Final = dt.timedelta(days=365)
RENEW_BEFORE: Final = dt.timedelta(days=30)  # regenerate rather than serve a nearly expired cert
CLOCK_SKEW: Final = dt.timedelta(hours=1)  # notBefore slightly in the past, for skewed clocks


@dataclass(frozen=True)
class Authority:
    """One CA and the leaf it signed, as PEM files."""

    ca_cert_path: Path
    ca_key_path: Path
    leaf_cert_path: Path
    leaf_key_path: Path

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context presenting this authority's leaf."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.leaf_cert_path, self.leaf_key_path)
        return context


@dataclass(frozen=True)
class TlsMaterial:
    """The trusted authority (its CA goes into ``SSL_CERT_FILE``) and the untrusted one."""

    trusted: Authority
    untrusted: Authority

    @property
    def ca_cert_path(self) -> Path:
        return self.trusted.ca_cert_path


def load_or_create(directory: Path) -> TlsMaterial:
    """Reuse the certificates under ``directory`` while valid; create whatever is missing."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return TlsMaterial(
        trusted=_ensure_authority(directory, "ca", "waqr simulator test CA"),
        untrusted=_ensure_authority(
            directory / "untrusted", "ca", "waqr simulator UNTRUSTED interceptor CA"
        ),
    )


def _ensure_authority(directory: Path, stem: str, ca_name: str) -> Authority:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    leaf_stem = SERVER_NAMES[0]
    authority = Authority(
        ca_cert_path=directory / f"{stem}.pem",
        ca_key_path=directory / f"{stem}-key.pem",
        leaf_cert_path=directory / f"{leaf_stem}.pem",
        leaf_key_path=directory / f"{leaf_stem}-key.pem",
    )
    now = dt.datetime.now(dt.UTC)
    ca = _load_valid(authority.ca_cert_path, authority.ca_key_path, now)
    if ca is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = make_ca(ca_key, ca_name, now)
        _write_key(authority.ca_key_path, ca_key)
        _write(authority.ca_cert_path, _pem(ca_cert), mode=0o644)
    else:
        ca_cert, ca_key = ca
    leaf = _load_valid(authority.leaf_cert_path, authority.leaf_key_path, now)
    if leaf is None or leaf[0].issuer != ca_cert.subject or not _signed_by(leaf[0], ca_cert):
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf_cert = _make_leaf(leaf_key, ca_key, ca_cert, now)
        _write_key(authority.leaf_key_path, leaf_key)
        _write(authority.leaf_cert_path, _pem(leaf_cert), mode=0o644)
    return authority


def make_ca(key: ec.EllipticCurvePrivateKey, name: str, now: dt.datetime) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _make_leaf(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: dt.datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAMES[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + LEAF_LIFETIME)
        # Go checks the SAN, never the CN, and wants serverAuth in the EKU.
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in SERVER_NAMES]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _load_valid(
    cert_path: Path, key_path: Path, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The certificate and key if both load, match and stay valid a while longer."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    if cert.not_valid_after_utc - RENEW_BEFORE < now or cert.not_valid_before_utc > now:
        return None
    return cert, key


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError):
        return False
    return True


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(path, pem)


def _write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Atomic write; the temp file starts 0600, so a key is never readable by others."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
