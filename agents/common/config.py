"""TOML-plus-flags config helpers shared by ``vmgrid-cluster`` and ``vmgrid-coordinator``.

Both servers read a TOML file, let flags override its keys, and check the same listen address
and TLS files; the rules (and their one-line messages) are written once here so that the two
programs cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Protocol

from vmgrid.agents.errors import ConfigError

TLS_FIELDS = ("tls_ca_file", "tls_cert_file", "tls_key_file")


class DataclassInstance(Protocol):
    """Any dataclass instance (what ``dataclasses.fields`` accepts)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]


def check_listen(listen: str, example: str) -> None:
    """ConfigError unless ``listen`` is host:port with a port 0-65535."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"listen: {listen!r} is not host:port (e.g. {example})")


def check_tls_files(config: object) -> None:
    """ConfigError naming the first of the three TLS files that is unset or not a file."""
    for name in TLS_FIELDS:
        value = getattr(config, name)
        if not value:
            raise ConfigError(
                f"{name}: not set; give --certs DIR (or the three --tls-* files), "
                "or --insecure for plaintext"
            )
        if not Path(value).is_file():
            raise ConfigError(f"{name}: {value!r} is not a readable file")


def read_toml(path: str) -> dict[str, Any]:
    """The whole TOML file; ConfigError when it is missing or malformed."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config: file {path!r} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config: {path!r} is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"config: {path!r} cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: {path!r} is not valid TOML ({exc})") from None


def check_keys(data: dict[str, Any], defaults: DataclassInstance, path: str) -> dict[str, Any]:
    """``data`` with int values of float fields made floats; ConfigError names an unknown key
    or a value whose type is not the field's default's type."""
    fields = [f.name for f in dataclasses.fields(defaults)]
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"config: unknown key {key!r}; accepted: {', '.join(fields)}")
        expected = type(getattr(defaults, key))
        if expected is float and type(value) is int:
            data[key] = float(value)
        elif type(value) is not expected:
            raise ConfigError(
                f"config: {key} = {value!r} must be a {expected.__name__} in {path!r}"
            )
    return data


def add_tls_arguments(
    parser: argparse.ArgumentParser, cert_name: str | None, certs_help: str, name_help: str = ""
) -> None:
    """--insecure, --certs, --cert-name and the three --tls-* flags of a server; a
    ``cert_name`` of None leaves --cert-name unset (``name_help`` says what it then is)."""
    parser.add_argument(
        "--insecure", action="store_true", default=None, help="serve plaintext (no TLS)"
    )
    parser.add_argument("--certs", metavar="DIR", help=certs_help)
    parser.add_argument(
        "--cert-name",
        default=cert_name,
        help=f"component name in --certs (default {name_help or cert_name})",
    )
    parser.add_argument("--tls-ca-file", metavar="PEM", help="CA for client certificates")
    parser.add_argument("--tls-cert-file", metavar="PEM", help="server certificate")
    parser.add_argument("--tls-key-file", metavar="PEM", help="server private key")


def add_endpoint_arguments(parser: argparse.ArgumentParser, tokens_default: str) -> None:
    """--ready-file, --metrics-listen, --web-listen and --web-token-file of a server;
    ``tokens_default`` says where generated dashboard tokens go."""
    parser.add_argument("--ready-file", metavar="FILE", help="write the bound host:port here")
    parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics there (default: none; port 0 picks one, logged)",
    )
    parser.add_argument(
        "--web-listen",
        metavar="HOST:PORT",
        help="serve the web dashboard there (default: none; port 0 picks one, logged)",
    )
    parser.add_argument(
        "--web-token-file",
        metavar="FILE",
        help="TOML with read/operator dashboard tokens (default: generated once, 0600, "
        f"{tokens_default})",
    )


def apply_flags(
    values: dict[str, Any], args: argparse.Namespace, defaults: DataclassInstance
) -> dict[str, Any]:
    """``values`` (from TOML) overridden by --certs and then by every flag that was given."""
    if args.certs:
        base = Path(args.certs)
        values["tls_ca_file"] = str(base / "ca.crt")
        values["tls_cert_file"] = str(base / f"{args.cert_name}.crt")
        values["tls_key_file"] = str(base / f"{args.cert_name}.key")
    for field in dataclasses.fields(defaults):
        value = getattr(args, field.name, None)
        if value is not None:
            values[field.name] = value
    return values


def parse_web_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); ConfigError names the value and what is accepted."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(
            f"web_listen: {value!r} is not HOST:PORT with a port 0-65535 "
            "(e.g. 127.0.0.1:8080; port 0 picks a free port; empty serves no dashboard)"
        )
    return host.strip("[]"), int(port)
