"""etcd over TLS: the ``[etcd]`` TLS keys (one clear error per bad value) and the etcd
member certificates ``vmgridctl certs etcd-member`` issues with the project CA."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.errors import ConfigError
from vmgrid.coordinator.cli.main import main as vmgridctl

HTTPS = ("https://10.0.0.11:2379",)


def _pem(path: Path) -> str:
    path.write_text("x")
    return str(path)


def test_https_endpoints_need_the_ca(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"etcd.ca_file: empty while the endpoints are https"):
        ReplicaOptions(endpoints=HTTPS).validate()
    ca = _pem(tmp_path / "ca.crt")
    assert ReplicaOptions(endpoints=HTTPS, ca_file=ca).validate().tls is not None


def test_bad_tls_keys_are_named(tmp_path: Path) -> None:
    ca, cert = _pem(tmp_path / "ca.crt"), _pem(tmp_path / "c.crt")
    with pytest.raises(ConfigError, match="mixes http:// and https://"):
        ReplicaOptions(endpoints=(*HTTPS, "http://10.0.0.12:2379"), ca_file=ca).validate()
    with pytest.raises(ConfigError, match="give both or neither"):
        ReplicaOptions(endpoints=HTTPS, ca_file=ca, cert_file=cert).validate()
    with pytest.raises(ConfigError, match=r"etcd.key_file: '.*/missing.key' is not a readable"):
        ReplicaOptions(
            endpoints=HTTPS, ca_file=ca, cert_file=cert, key_file=str(tmp_path / "missing.key")
        ).validate()
    with pytest.raises(ConfigError, match="etcd.ca_file = .* the endpoints are not https"):
        ReplicaOptions(endpoints=("http://10.0.0.11:2379",), ca_file=ca).validate()
    assert ReplicaOptions(endpoints=("http://10.0.0.11:2379",)).validate().tls is None


def test_an_etcd_member_certificate_is_signed_by_the_project_ca_and_names_no_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certs, ca_dir = tmp_path / "certs", tmp_path / "ca"
    assert vmgridctl(["certs", "init", "--dir", str(certs), "--ca-dir", str(ca_dir)]) == 0
    argv = ["certs", "etcd-member", "--name", "m1", "--dir", str(certs), "--ca-dir", str(ca_dir),
            "--san", "10.0.0.11"]  # fmt: skip
    assert vmgridctl(argv) == 0
    assert capsys.readouterr().out.strip().endswith("m1.crt")
    cert = x509.load_pem_x509_certificate((certs / "m1.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    assert cert.issuer == ca.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.0.0.11") in san.get_values_for_type(x509.IPAddress)
    assert "m1" in san.get_values_for_type(x509.DNSName)
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == []
    assert (certs / "m1.key").exists()
    assert not (certs / "ca.key").exists()
    assert vmgridctl(["certs", "etcd-member", "--name", "bad name", "--dir", str(certs),
                      "--ca-dir", str(ca_dir)]) == 2  # fmt: skip
    assert "--name" in capsys.readouterr().err
