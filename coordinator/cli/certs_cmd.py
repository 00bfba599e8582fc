"""`vmgridctl certs init|issue`: the project CA and one mTLS certificate per holder."""

from __future__ import annotations

import argparse
import sys

from vmgrid.agents.identity import ROLE_NAMES, Identity, IdentityError, parse_role
from vmgrid.coordinator.certs import (
    DEFAULT_COMPONENTS,
    CertError,
    init_certs,
    issue_cert,
    issue_etcd_member_cert,
    revocation_line,
    revoke,
)

_CA_DIR_HELP = "directory of the CA key and certificate (default: DIR-ca, beside --dir)"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    certs = sub.add_parser("certs", help="manage mTLS certificates")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    defaults = ", ".join(f"{c.name} ({c.role.value})" for c in DEFAULT_COMPONENTS)
    init = certs_sub.add_parser(
        "init",
        help="create a CA (or reuse CA_DIR/ca.*) and the default certificates",
        description=f"Writes CA_DIR/ca.crt and CA_DIR/ca.key, then DIR/ca.crt and "
        f"DIR/NAME.crt, DIR/NAME.key for {defaults}. The CA key never goes into DIR. "
        "Certificates name their holder as vmgrid://ROLE/NAME and are valid for 127.0.0.1, "
        "localhost, NAME and each --san.",
    )
    init.add_argument("--dir", required=True, help="certs directory components use")
    init.add_argument("--ca-dir", metavar="CA_DIR", help=_CA_DIR_HELP)
    init.add_argument(
        "--san", action="append", default=[], metavar="NAME", help="extra DNS name or IP"
    )
    init.set_defaults(handler=_init)
    issue = certs_sub.add_parser(
        "issue",
        help="issue one certificate for a role and a name",
        description="Writes DIR/NAME.crt and DIR/NAME.key (and DIR/ca.crt) signed by the CA "
        "of CA_DIR. A node's NAME is its node id, a cluster manager's its cluster id.",
    )
    issue.add_argument("--role", required=True, help=f"one of {', '.join(ROLE_NAMES)}")
    issue.add_argument("--name", required=True, help="node id, cluster id or person/tool name")
    issue.add_argument("--dir", required=True, help="certs directory to write into")
    issue.add_argument("--ca-dir", metavar="CA_DIR", help=_CA_DIR_HELP)
    issue.add_argument(
        "--san", action="append", default=[], metavar="NAME", help="extra DNS name or IP"
    )
    issue.set_defaults(handler=_issue)
    member = certs_sub.add_parser(
        "etcd-member",
        help="issue an etcd member's certificate (client and peer TLS of the replicated store)",
        description="Writes DIR/NAME.crt and DIR/NAME.key (and DIR/ca.crt) signed by the CA of "
        "CA_DIR, valid for 127.0.0.1, localhost, NAME and each --san, for server and client "
        "authentication, naming no vmgrid holder (docs/replication.md, etcd over TLS).",
    )
    member.add_argument("--name", required=True, help="the member's name (ETCD_NAME)")
    member.add_argument("--dir", required=True, help="certs directory to write into")
    member.add_argument("--ca-dir", metavar="CA_DIR", help=_CA_DIR_HELP)
    member.add_argument(
        "--san", action="append", default=[], metavar="NAME", help="extra DNS name or IP"
    )
    member.set_defaults(handler=_etcd_member)
    revoke = certs_sub.add_parser(
        "revoke",
        help="add a certificate or a holder to the deny list servers re-read",
        description="Appends to DIR/revoked.txt, which servers whose CA file is DIR/ca.crt "
        "re-read within a second: every new call of a listed certificate is refused. Copy "
        "the file to every server's certs directory.",
    )
    revoke.add_argument("--dir", required=True, help="certs directory holding ca.crt")
    what = revoke.add_mutually_exclusive_group(required=True)
    what.add_argument("--cert", metavar="PEM", help="revoke this certificate (by its serial)")
    what.add_argument("--serial", metavar="HEX", help="revoke the certificate with this serial")
    what.add_argument(
        "--holder", metavar="vmgrid://ROLE/NAME", help="revoke every certificate of a holder"
    )
    revoke.set_defaults(handler=_revoke)


def _etcd_member(args: argparse.Namespace) -> int:
    try:
        path = issue_etcd_member_cert(args.dir, args.name, args.ca_dir, args.san)
    except CertError as exc:
        print(f"vmgridctl certs etcd-member: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _init(args: argparse.Namespace) -> int:
    try:
        paths = init_certs(args.dir, DEFAULT_COMPONENTS, args.san, args.ca_dir)
    except CertError as exc:
        print(f"vmgridctl certs init: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def _issue(args: argparse.Namespace) -> int:
    try:
        identity = Identity(parse_role(args.role), args.name)
        path = issue_cert(args.dir, identity, args.ca_dir, args.san)
    except IdentityError as exc:
        print(f"vmgridctl certs issue: --role: {exc}", file=sys.stderr)
        return 2
    except CertError as exc:
        print(f"vmgridctl certs issue: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        line = revocation_line(args.cert, args.serial, args.holder)
        path = revoke(args.dir, line)
    except CertError as exc:
        print(f"vmgridctl certs revoke: {exc}", file=sys.stderr)
        return 2
    print(f"{path}: {line}")
    return 0
