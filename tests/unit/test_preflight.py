"""Start-up checks (agents/common/preflight.py): each bad condition is one ConfigError naming
the key and the value, and the good ones pass."""

from __future__ import annotations

import argparse
import socket
import sqlite3
import ssl
from pathlib import Path

import pytest
from vmgrid.agents.cluster.service import config as cluster_config
from vmgrid.agents.common import preflight
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.identity import Role, identity_of_der
from vmgrid.coordinator.certs import DEFAULT_COMPONENTS, init_certs


def test_a_port_with_a_listener_is_refused_and_a_free_one_passes() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        with pytest.raises(ConfigError, match=f"web_listen: cannot bind '{taken}'"):
            preflight.check_port_free("web_listen", taken)
    preflight.check_port_free("listen", taken)  # released
    preflight.check_port_free("listen", "127.0.0.1:0")


def test_databases_empty_or_vmgrid_pass_foreign_or_not_sqlite_are_refused(tmp_path: Path) -> None:
    tables = ("plans", "rules")
    preflight.check_database("journal", str(tmp_path / "absent.sqlite"), tables)
    (tmp_path / "empty.sqlite").touch()
    preflight.check_database("journal", str(tmp_path / "empty.sqlite"), tables)
    with sqlite3.connect(tmp_path / "ours.sqlite") as db:
        db.execute("CREATE TABLE plans (id TEXT)")
    preflight.check_database("journal", str(tmp_path / "ours.sqlite"), tables)
    with sqlite3.connect(tmp_path / "theirs.sqlite") as db:
        db.execute("CREATE TABLE invoices (id TEXT)")
    with pytest.raises(ConfigError, match="is not a vmgrid database .*invoices"):
        preflight.check_database("journal", str(tmp_path / "theirs.sqlite"), tables)
    (tmp_path / "text.sqlite").write_text("hello\n")
    with pytest.raises(ConfigError, match="journal: '.*text.sqlite' is not an SQLite database"):
        preflight.check_database("journal", str(tmp_path / "text.sqlite"), tables)
    with pytest.raises(ConfigError, match="is a directory"):
        preflight.check_database("journal", str(tmp_path), tables)


def test_tls_files_must_be_pem_and_the_key_the_certificates(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    init_certs(certs)
    ca, cert, key = (str(certs / f) for f in ("ca.crt", "cluster-1.crt", "cluster-1.key"))

    def check(ca_file: str = ca, cert_file: str = cert, key_file: str = key) -> None:
        preflight.check_tls("ca", ca_file, "cert", cert_file, "key", key_file)

    check()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not PEM\n")
    with pytest.raises(ConfigError, match="^ca: '.*garbage.pem' holds no PEM certificate$"):
        check(ca_file=str(garbage))
    with pytest.raises(ConfigError, match="^cert: '.*garbage.pem' holds no PEM certificate$"):
        check(cert_file=str(garbage))
    with pytest.raises(ConfigError, match="^key: '.*garbage.pem' holds no PEM private key$"):
        check(key_file=str(garbage))
    other_key = str(certs / "vmgridctl.key")
    with pytest.raises(ConfigError, match="vmgridctl.key' is not the key of the certificate"):
        check(key_file=other_key)
    with pytest.raises(ConfigError, match="is a directory, not a file"):
        check(cert_file=str(tmp_path))
    with pytest.raises(ConfigError, match="cannot be read"):
        check(key_file=str(tmp_path / "missing.key"))


def test_certs_init_names_the_cluster_certificate_after_the_default_cluster_id(
    tmp_path: Path,
) -> None:
    """A manager started with the defaults and `--certs DIR` finds the certificate `certs init`
    wrote, and that certificate names the cluster its hellos claim."""
    init_certs(tmp_path / "certs")
    parser = argparse.ArgumentParser()
    cluster_config.add_arguments(parser)
    config = cluster_config.from_keys({}, parser.parse_args(["--certs", str(tmp_path / "certs")]))
    assert Path(config.tls_cert_file).name == f"{config.cluster_id}.crt"
    der = ssl.PEM_cert_to_DER_cert(Path(config.tls_cert_file).read_text())
    identity = identity_of_der(der)
    assert identity is not None and (identity.role, identity.name) == (
        Role.CLUSTER,
        config.cluster_id,
    )
    clusters = [c.name for c in DEFAULT_COMPONENTS if c.role is Role.CLUSTER]
    assert clusters == [config.cluster_id]
