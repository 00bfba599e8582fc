"""gRPC credentials for vmgrid's mutual TLS, from a certs directory.

A certs directory is what ``vmgridctl certs init --dir DIR`` writes: ``ca.crt`` (the project
CA) and ``NAME.crt`` / ``NAME.key`` per component. Servers require client certificates
signed by the CA; clients present their own certificate and verify the server's.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
from vmgrid.agents.errors import ConfigError, VmgridError
from vmgrid.agents.identity import Role, identity_of_der, role_host


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the three PEM files one component needs."""

    ca_file: str
    cert_file: str
    key_file: str

    @classmethod
    def from_dir(cls, certs_dir: str | Path, name: str) -> TlsFiles:
        """Files of component ``name`` in a directory written by 'vmgridctl certs init'."""
        base = Path(certs_dir)
        return cls(str(base / "ca.crt"), str(base / f"{name}.crt"), str(base / f"{name}.key"))

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(ca, cert, key) bytes; ConfigError names a missing or unreadable file."""
        contents = []
        for label, path in (("CA", self.ca_file), ("cert", self.cert_file), ("key", self.key_file)):
            try:
                contents.append(Path(path).read_bytes())
            except OSError as exc:
                raise ConfigError(f"TLS {label} file {path!r}: {exc.strerror}") from None
        return contents[0], contents[1], contents[2]


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials that require a client certificate signed by the CA (mTLS)."""
    ca, cert, key = files.read()
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Client credentials presenting this component's certificate and trusting the CA."""
    ca, cert, key = files.read()
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def server_role_options(role: Role) -> tuple[tuple[str, str], ...]:
    """Channel options under which the TLS handshake itself fails unless the server presents
    a certificate of ``role`` (the certificate's role name stands in for its host name)."""
    return (("grpc.ssl_target_name_override", role_host(role)),)


def secure_channel(target: str, files: TlsFiles, server_role: Role) -> grpc.aio.Channel:
    """An asyncio channel over mTLS to a ``target`` that must hold a ``server_role``
    certificate."""
    return grpc.aio.secure_channel(
        target, channel_credentials(files), server_role_options(server_role)
    )


class WrongServer(VmgridError):
    """The server at an address proved to be another kind of component than the one asked
    for (its certificate names another role)."""

    grpc_status = "UNAVAILABLE"


_ROLE_WORDS = {
    Role.CLUSTER: "a cluster manager",
    Role.COORDINATOR: "a coordinator",
    Role.NODE: "a node",
    Role.OPERATOR: "an operator",
    Role.READONLY: "a read-only operator",
}


class TlsHandshakeFailed(VmgridError):
    """A server answered on the address but no TLS handshake completed with it (another CA,
    a plaintext server, a refused client certificate)."""

    grpc_status = "UNAVAILABLE"


def _peer_certificate(target: str, files: TlsFiles, timeout_s: float) -> bytes | None:
    """The DER certificate ``target`` presents in a mutual TLS handshake checked against the
    CA of ``files``; None when nothing answers there (the gRPC call then says so);
    TlsHandshakeFailed when something answers but the handshake fails."""
    host, _, port = target.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the role is what is checked here; gRPC checks the name
    context.set_alpn_protocols(["h2"])
    try:
        context.load_verify_locations(files.ca_file)
        context.load_cert_chain(files.cert_file, files.key_file)
        raw = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s)
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return None
    with raw:
        try:
            with context.wrap_socket(raw) as tls:
                der = tls.getpeercert(binary_form=True)
                _check_accepted(tls, target, min(timeout_s, 2.0))
                return der
        except ssl.SSLError as exc:
            raise TlsHandshakeFailed(
                f"{target}: TLS handshake failed ({exc.reason or exc}); is it a vmgrid server "
                f"whose certificate is signed by {files.ca_file!r}?"
            ) from None
        except OSError:
            return None


def _check_accepted(tls: ssl.SSLSocket, target: str, timeout_s: float) -> None:
    """TlsHandshakeFailed when the server closes the connection right after the handshake:
    under TLS 1.3 that is how it refuses the client's certificate (another CA). A gRPC server
    that accepts it sends its HTTP/2 settings at once; silence is taken as acceptance."""
    tls.settimeout(timeout_s)
    try:
        closed = tls.recv(1) == b""
    except TimeoutError:
        return
    if closed:
        raise TlsHandshakeFailed(
            f"{target}: the server closed the connection after the TLS handshake: it does not "
            "accept this client certificate (signed by another CA?)"
        )


def check_server_role(target: str, files: TlsFiles, expected: Role, timeout_s: float = 5.0) -> None:
    """WrongServer, naming what answered, unless ``target`` presents a certificate of role
    ``expected``. A server no handshake completes with passes: the gRPC call that follows
    reports why (unreachable, another CA) as it always did."""
    der = _peer_certificate(target, files, timeout_s)
    if der is None:
        return
    found = identity_of_der(der)
    wanted = _ROLE_WORDS[expected]
    if found is None:
        raise WrongServer(
            f"{target} presents a certificate without a vmgrid://ROLE/NAME identity, "
            f"not {wanted}'s; refused"
        )
    if found.role is not expected:
        raise WrongServer(
            f"{target} presents the certificate of {found} ({_ROLE_WORDS[found.role]}), "
            f"not {wanted}'s; refused"
        )
