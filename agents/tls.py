"""gRPC credentials for vmgrid's mutual TLS, from a certs directory.

A certs directory is what ``vmgridctl certs init --dir DIR`` writes: ``ca.crt`` (the project
CA) and ``NAME.crt`` / ``NAME.key`` per component. Servers require client certificates
signed by the CA; clients present their own certificate and verify the server's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from vmgrid.agents.errors import ConfigError


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


def secure_channel(target: str, files: TlsFiles) -> grpc.aio.Channel:
    """An asyncio channel to ``target`` over mTLS."""
    return grpc.aio.secure_channel(target, channel_credentials(files))
