"""Who holds a certificate: a role and a name, carried in a URI SAN ``vmgrid://ROLE/NAME``.

Servers take the caller's identity from the peer certificate the TLS layer verified, never from
a message; clients check the server's role the same way. A certificate without that URI has no
identity and is refused everywhere TLS is on.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmgrid.v1.errors import VmgridError

if TYPE_CHECKING:
    from cryptography import x509

URI_SCHEME = "vmgrid"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class Role(enum.Enum):
    """What a certificate's holder is; the value is the URI host and the CLI spelling."""

    NODE = "node"
    """A node agent: speaks only on the node link, only as itself."""
    CLUSTER = "cluster"
    """A cluster manager: speaks only on the grid link, only for its own cluster."""
    COORDINATOR = "coordinator"
    """The grid coordinator: also a client of cluster managers (its dashboard relays actions)."""
    OPERATOR = "operator"
    """A person or tool with every operator RPC (vmgridctl, the dashboard's users)."""
    READONLY = "readonly"
    """A read-only operator: list, get, watch and check RPCs only."""


ROLE_NAMES = tuple(role.value for role in Role)


class IdentityError(VmgridError, ValueError):
    """A role or name that cannot go into a certificate; the message names the value."""


@dataclass(frozen=True)
class Identity:
    """The holder of a certificate."""

    role: Role
    name: str

    def uri(self) -> str:
        return f"{URI_SCHEME}://{self.role.value}/{self.name}"

    def __str__(self) -> str:
        return self.uri()


def role_host(role: Role) -> str:
    """The DNS name every certificate of ``role`` carries, so a TLS client can require the
    server's role in the handshake itself (gRPC's ``ssl_target_name_override``)."""
    return f"{role.value}.role.vmgrid"


def parse_role(text: str) -> Role:
    """The role spelled ``text``; IdentityError names it and the accepted spellings."""
    try:
        return Role(text)
    except ValueError:
        raise IdentityError(f"role {text!r} is not one of {', '.join(ROLE_NAMES)}") from None


def check_name(name: str) -> str:
    """``name`` when it is a plain identity name (letters, digits, '.', '_', '-'; 1-63)."""
    if not _NAME.match(name):
        raise IdentityError(
            f"name {name!r} is not 1-63 letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    return name


def parse_uri(uri: str) -> Identity | None:
    """The identity in ``vmgrid://ROLE/NAME``; None for any other URI."""
    prefix = f"{URI_SCHEME}://"
    if not uri.startswith(prefix):
        return None
    role_text, sep, name = uri[len(prefix) :].partition("/")
    if not sep or role_text not in ROLE_NAMES or not _NAME.match(name):
        return None
    return Identity(Role(role_text), name)


def identity_of(cert: x509.Certificate) -> Identity | None:
    """The one vmgrid identity a certificate names; None when it names none or several."""
    from cryptography import x509  # here: a node agent without TLS never pays its ~8 MB

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    found = {parse_uri(uri) for uri in san.get_values_for_type(x509.UniformResourceIdentifier)}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def identity_of_der(der: bytes) -> Identity | None:
    """:func:`identity_of` for a DER certificate; None when it does not parse."""
    from cryptography import x509

    try:
        return identity_of(x509.load_der_x509_certificate(der))
    except ValueError:
        return None
