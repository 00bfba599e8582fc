"""Certificates for vmgrid's mutual TLS: one project CA and one certificate per component.

Every component certificate is valid for both server and client authentication, so the same
files serve a manager's listening port and its outgoing link. Subject alternative names always
include 127.0.0.1, localhost and the component name, plus any extra names given.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from vmgrid.v1.errors import VmgridError

DEFAULT_COMPONENTS = ("cluster", "agent", "coordinator", "vmgridctl")
_VALIDITY = datetime.timedelta(days=825)


class CertError(VmgridError):
    """Root error of certificate handling; the message names the bad value."""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vmgrid"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if not cert_path.exists():
        return None
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{key_path}: expected an EC private key")
    return cert, key


def create_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Write ca.crt and ca.key (reusing existing ones, so new components join the same CA)."""
    existing = _load_ca(directory)
    if existing is not None:
        return existing
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("vmgrid CA"))
        .issuer_name(_name("vmgrid CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .sign(key, hashes.SHA256())
    )
    _write_key(directory / "ca.key", key)
    _write_cert(directory / "ca.crt", cert)
    return cert, key


def _san(name: str, extra: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    for value in ("localhost", name, *extra):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(value)))
        except ValueError:
            entries.append(x509.DNSName(value))
    unique = list(dict.fromkeys(entries))
    return x509.SubjectAlternativeName(unique)


def create_component_cert(
    directory: Path,
    name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    extra_names: Sequence[str] = (),
) -> Path:
    """Write NAME.crt and NAME.key signed by the CA; returns the certificate path."""
    if not name or "/" in name or name.startswith("."):
        raise CertError(f"component name {name!r} is not a plain file name (e.g. 'cluster')")
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(_san(name, extra_names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(directory / f"{name}.key", key)
    cert_path = directory / f"{name}.crt"
    _write_cert(cert_path, cert)
    return cert_path


def init_certs(
    directory: str | Path,
    components: Sequence[str] = DEFAULT_COMPONENTS,
    extra_names: Sequence[str] = (),
) -> list[Path]:
    """Create (or reuse) the CA in ``directory`` and one certificate per component."""
    base = Path(directory)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CertError(f"--dir {str(base)!r}: cannot create directory ({exc.strerror})") from None
    ca = create_ca(base)
    return [create_component_cert(base, name, ca, extra_names) for name in components]
