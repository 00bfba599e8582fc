"""Certificates for vmgrid's mutual TLS: one project CA and one certificate per holder.

Each certificate names its holder's role and name in a URI SAN ``vmgrid://ROLE/NAME``
(:mod:`vmgrid.agents.identity`); servers authorise every RPC by it. The CA key lives in its
own directory (default: ``DIR-ca`` beside the certs directory ``DIR``), never in the directory
components are pointed at, which holds only ``ca.crt`` and certificates with their keys.
Certificates are valid for both server and client authentication; their DNS/IP names always
include 127.0.0.1, localhost and the holder's name, plus any extra names given.
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
from vmgrid.agents.common.revocation import FILE_NAME
from vmgrid.agents.identity import (
    Identity,
    IdentityError,
    Role,
    check_name,
    identity_of,
    parse_uri,
    role_host,
)
from vmgrid.v1.errors import VmgridError

DEFAULT_COMPONENTS = (
    Identity(Role.COORDINATOR, "coordinator"),
    Identity(Role.CLUSTER, "cluster-1"),
    Identity(Role.OPERATOR, "vmgridctl"),
)
"""What ``certs init`` issues; nodes and named clusters get theirs from ``certs issue``. The
cluster manager's certificate is named after the default cluster id (``ClusterConfig``), so a
manager started with the defaults presents the identity its hellos claim."""
_VALIDITY = datetime.timedelta(days=825)


class CertError(VmgridError):
    """Root error of certificate handling; the message names the bad value."""


def _name(common_name: str, unit: str = "") -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vmgrid")]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


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


CA = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def default_ca_dir(certs_dir: str | Path) -> Path:
    """Where the CA key goes unless told: ``DIR-ca`` beside the certs directory."""
    base = Path(certs_dir)
    return base.with_name(base.name + "-ca")


def load_ca(directory: Path) -> CA | None:
    """The CA in ``directory`` (ca.crt + ca.key); None when there is none yet."""
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if not cert_path.exists() and not key_path.exists():
        return None
    try:
        cert_bytes, key_bytes = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as exc:
        raise CertError(f"CA file {str(exc.filename)!r}: {exc.strerror}") from None
    try:
        cert = x509.load_pem_x509_certificate(cert_bytes)
    except ValueError:
        raise CertError(f"CA file {str(cert_path)!r} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_bytes, password=None)
    except (ValueError, TypeError):
        raise CertError(
            f"CA file {str(key_path)!r} is not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"CA file {str(key_path)!r}: expected an EC private key")
    if key.public_key() != cert.public_key():
        raise CertError(f"CA file {str(key_path)!r} is not the key of {str(cert_path)!r}")
    return cert, key


def create_ca(directory: Path) -> CA:
    """Write ca.crt and ca.key (reusing existing ones, so new components join the same CA)."""
    _mkdir(directory, "--ca-dir")
    existing = load_ca(directory)
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


def _san(identity: Identity, extra: Iterable[str]) -> x509.SubjectAlternativeName:
    name = identity.name
    entries: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(identity.uri()),
        x509.DNSName(role_host(identity.role)),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    for value in ("localhost", name, *extra):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(value)))
        except ValueError:
            entries.append(x509.DNSName(value))
    unique = list(dict.fromkeys(entries))
    return x509.SubjectAlternativeName(unique)


def create_component_cert(
    directory: Path, identity: Identity, ca: CA, extra_names: Sequence[str] = ()
) -> Path:
    """Write NAME.crt and NAME.key signed by the CA (and ca.crt beside them); returns the
    certificate path."""
    try:
        name = check_name(identity.name)
    except IdentityError as exc:
        raise CertError(f"--name: {exc}") from None
    return _signed(directory, name, identity.role.value, _san(identity, extra_names), ca)


def create_etcd_member_cert(
    directory: Path, name: str, ca: CA, extra_names: Sequence[str] = ()
) -> Path:
    """Write NAME.crt and NAME.key for an etcd member of the replicated store (its client and
    peer ports), signed by the project CA: valid for 127.0.0.1, localhost, NAME and
    `extra_names`, for server and client authentication (members dial each other), and with
    no ``vmgrid://`` identity, so no vmgrid server accepts it. vmgrid's replicas present their
    own component certificates to etcd."""
    try:
        name = check_name(name)
    except IdentityError as exc:
        raise CertError(f"--name: {exc}") from None
    entries: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    for value in ("localhost", name, *extra_names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(value)))
        except ValueError:
            entries.append(x509.DNSName(value))
    san = x509.SubjectAlternativeName(list(dict.fromkeys(entries)))
    return _signed(directory, name, "etcd", san, ca)


def _signed(
    directory: Path, name: str, unit: str, san: x509.SubjectAlternativeName, ca: CA
) -> Path:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name, unit))
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
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(directory / f"{name}.key", key)
    cert_path = directory / f"{name}.crt"
    _write_cert(cert_path, cert)
    _write_cert(directory / "ca.crt", ca_cert)
    return cert_path


def _mkdir(directory: Path, flag: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CertError(
            f"{flag} {str(directory)!r}: cannot create directory ({exc.strerror})"
        ) from None


def _check_no_ca_key(certs_dir: Path, ca_dir: Path) -> None:
    if certs_dir.resolve() == ca_dir.resolve():
        raise CertError(
            f"--ca-dir {str(ca_dir)!r} is the certs directory; the CA key must live apart "
            "from the files components are pointed at"
        )
    if (certs_dir / "ca.key").exists():
        raise CertError(
            f"{str(certs_dir / 'ca.key')!r}: a CA key in the certs directory lets any component "
            f"mint certificates; move ca.key and ca.crt to {str(ca_dir)!r} (--ca-dir)"
        )


def issue_cert(
    certs_dir: str | Path,
    identity: Identity,
    ca_dir: str | Path | None = None,
    extra_names: Sequence[str] = (),
) -> Path:
    """Issue one certificate for ``identity`` into ``certs_dir`` with the CA of ``ca_dir``
    (default :func:`default_ca_dir`), which must exist (``certs init`` makes it)."""
    base, ca = _issuing(certs_dir, ca_dir)
    return create_component_cert(base, identity, ca, extra_names)


def issue_etcd_member_cert(
    certs_dir: str | Path,
    name: str,
    ca_dir: str | Path | None = None,
    extra_names: Sequence[str] = (),
) -> Path:
    """Issue an etcd member's certificate (:func:`create_etcd_member_cert`) into
    ``certs_dir`` with the CA of ``ca_dir``, as :func:`issue_cert` does a component's."""
    base, ca = _issuing(certs_dir, ca_dir)
    return create_etcd_member_cert(base, name, ca, extra_names)


def _issuing(certs_dir: str | Path, ca_dir: str | Path | None) -> tuple[Path, CA]:
    """The certificate directory (made if missing) and the CA of ``ca_dir`` (default
    :func:`default_ca_dir`) that issues into it; CertError when there is no CA there, or when
    the CA's key sits in the certificate directory."""
    base = Path(certs_dir)
    ca_path = Path(ca_dir) if ca_dir is not None else default_ca_dir(base)
    _check_no_ca_key(base, ca_path)
    ca = load_ca(ca_path)
    if ca is None:
        raise CertError(
            f"--ca-dir {str(ca_path)!r} holds no CA (ca.crt, ca.key); run 'vmgridctl certs init'"
        )
    _mkdir(base, "--dir")
    return base, ca


def init_certs(
    directory: str | Path,
    components: Sequence[Identity] = DEFAULT_COMPONENTS,
    extra_names: Sequence[str] = (),
    ca_dir: str | Path | None = None,
) -> list[Path]:
    """Create (or reuse) the CA in ``ca_dir`` and one certificate per component in
    ``directory``, which gets ca.crt but never the CA key."""
    base = Path(directory)
    ca_path = Path(ca_dir) if ca_dir is not None else default_ca_dir(base)
    _check_no_ca_key(base, ca_path)
    ca = create_ca(ca_path)
    _mkdir(base, "--dir")
    return [create_component_cert(base, identity, ca, extra_names) for identity in components]


def revocation_line(cert_file: str | None, serial: str | None, holder: str | None) -> str:
    """The deny-list line for one of: a certificate file, a hex serial, a holder's URI."""
    if cert_file is not None:
        try:
            cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        except OSError as exc:
            raise CertError(f"--cert {cert_file!r}: {exc.strerror}") from None
        except ValueError:
            raise CertError(f"--cert {cert_file!r}: not a PEM certificate") from None
        holder_uri = identity_of(cert)
        return f"serial:{cert.serial_number:x}  # {holder_uri or 'no identity'}"
    if serial is not None:
        try:
            return f"serial:{int(serial.removeprefix('0x'), 16):x}"
        except ValueError:
            raise CertError(f"--serial {serial!r} is not a hexadecimal number") from None
    if holder is None or parse_uri(holder) is None:
        raise CertError(f"--holder {holder!r} is not vmgrid://ROLE/NAME (e.g. vmgrid://node/n1)")
    return holder


def revoke(certs_dir: str | Path, line: str) -> Path:
    """Append ``line`` to the deny list of ``certs_dir``; returns the list's path."""
    base = Path(certs_dir)
    if not (base / "ca.crt").is_file():
        raise CertError(f"--dir {str(base)!r} holds no ca.crt; give the servers' certs directory")
    path = base / FILE_NAME
    try:
        with path.open("a") as handle:
            handle.write(line + "\n")
    except OSError as exc:
        raise CertError(f"{str(path)!r}: {exc.strerror}") from None
    return path
