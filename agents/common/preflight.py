"""Start-up checks that turn a bad environment into one ConfigError line before serving.

A program that finds its port taken, its TLS files unreadable or mismatched, or its database
foreign should say so in one line naming the value and exit 2, before it logs that it serves
or writes anything. Each check here raises ``ConfigError`` naming the config key and the value;
the servers still map a late failure (a port taken between the check and the bind) the same way.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

from vmgrid.agents.errors import ConfigError

SQLITE_MAGIC = b"SQLite format 3\x00"


def _host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def check_port_free(key: str, listen: str) -> None:
    """ConfigError unless ``listen`` (host:port, already well-formed) can be bound now.

    Binds and releases a socket with SO_REUSEADDR only (what a server sets), so any listener
    on the port, including one that set SO_REUSEPORT, makes it fail. Port 0 always passes.
    """
    host, port = _host_port(listen)
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError(
            f"{key}: cannot resolve the host of {listen!r} ({exc.strerror})"
        ) from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise ConfigError(
                    f"{key}: cannot bind {listen!r} ({exc.strerror}): another process "
                    "serves there; give a free HOST:PORT"
                ) from None


def check_readable_file(key: str, path: str) -> None:
    """ConfigError unless ``path`` is a regular file this process can read."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{key}: {path!r} is a directory, not a file")
    try:
        with target.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{key}: {path!r} cannot be read ({exc.strerror})") from None


def check_tls(
    ca_key: str, ca_file: str, cert_key: str, cert_file: str, key_key: str, key_file: str
) -> None:
    """ConfigError naming the first TLS file that is unreadable or not PEM, or the key that
    does not belong to the certificate."""
    for key, path in ((ca_key, ca_file), (cert_key, cert_file), (key_key, key_file)):
        check_readable_file(key, path)
    for key, path in ((ca_key, ca_file), (cert_key, cert_file)):
        try:
            ssl.create_default_context().load_verify_locations(cafile=path)
        except (ssl.SSLError, ValueError):
            raise ConfigError(f"{key}: {path!r} holds no PEM certificate") from None
    if b"PRIVATE KEY-----" not in Path(key_file).read_bytes():
        raise ConfigError(f"{key_key}: {key_file!r} holds no PEM private key")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ConfigError(
                f"{key_key}: {key_file!r} is not the key of the certificate {cert_file!r}"
            ) from None
        raise ConfigError(f"{key_key}: {key_file!r} is not a usable PEM private key") from None


class ServerEndpoints(Protocol):
    """The fields both servers' configs (ClusterConfig, CoordinatorConfig) share."""

    @property
    def listen(self) -> str: ...
    @property
    def metrics_listen(self) -> str: ...
    @property
    def web_listen(self) -> str: ...
    @property
    def web_token_file(self) -> str: ...
    @property
    def insecure(self) -> bool: ...
    @property
    def tls_ca_file(self) -> str: ...
    @property
    def tls_cert_file(self) -> str: ...
    @property
    def tls_key_file(self) -> str: ...


def check_server(config: ServerEndpoints) -> None:
    """A server's ports free, its TLS files loadable and matching (unless insecure), its web
    token file a readable file."""
    check_port_free("listen", config.listen)
    for key, value in (
        ("metrics_listen", config.metrics_listen),
        ("web_listen", config.web_listen),
    ):
        if value:
            check_port_free(key, value)
    if not config.insecure:
        check_tls(
            "tls_ca_file",
            config.tls_ca_file,
            "tls_cert_file",
            config.tls_cert_file,
            "tls_key_file",
            config.tls_key_file,
        )
    if config.web_token_file:
        check_readable_file("web_token_file", config.web_token_file)


def check_database(key: str, path: str, tables: Collection[str]) -> None:
    """ConfigError unless ``path`` is absent, empty, or an SQLite database whose tables
    include one of ``tables`` (or none at all): a foreign database is never written into."""
    if path == ":memory:" or not path:
        return
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{key}: {path!r} is a directory, not a database file")
    if not target.exists():
        return
    try:
        with target.open("rb") as handle:
            header = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise ConfigError(f"{key}: {path!r} cannot be read ({exc.strerror})") from None
    if not header:
        return
    if header != SQLITE_MAGIC:
        raise ConfigError(f"{key}: {path!r} is not an SQLite database")
    import sqlite3  # here: the node agent, which imports this module, keeps no database

    try:
        db = sqlite3.connect(f"file:{target.resolve()}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"{key}: {path!r} is not a usable SQLite database ({exc})") from None
    found = {str(name) for (name,) in rows}
    if found and not found & set(tables):
        raise ConfigError(
            f"{key}: {path!r} is not a vmgrid database (its tables: "
            f"{', '.join(sorted(found)[:5])}); give a new file or a vmgrid one"
        )
