"""`vmgridctl certs init`: create the project CA and per-component mTLS certificates."""

from __future__ import annotations

import argparse
import sys

from vmgrid.coordinator.certs import DEFAULT_COMPONENTS, CertError, init_certs


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    certs = sub.add_parser("certs", help="manage mTLS certificates")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    init = certs_sub.add_parser(
        "init",
        help="create a CA (or reuse DIR/ca.*) and one certificate per component",
        description="Writes DIR/ca.crt, DIR/ca.key and DIR/NAME.crt, DIR/NAME.key per "
        "component; certificates serve as both server and client, valid for 127.0.0.1, "
        "localhost, NAME and each --san.",
    )
    init.add_argument("--dir", required=True, help="output directory")
    init.add_argument(
        "--component",
        action="append",
        metavar="NAME",
        help=f"component to certify (repeatable; default: {', '.join(DEFAULT_COMPONENTS)})",
    )
    init.add_argument(
        "--san", action="append", default=[], metavar="NAME", help="extra DNS name or IP"
    )
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    try:
        paths = init_certs(args.dir, args.component or DEFAULT_COMPONENTS, args.san)
    except CertError as exc:
        print(f"vmgridctl certs init: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0
