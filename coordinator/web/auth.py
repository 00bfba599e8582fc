"""Bearer-token authentication and cross-site request protection.

Two tokens: a read-only one for GETs and an operator one that may also act. Tokens travel only
in the ``Authorization`` header, never in cookies, so a cross-site page cannot make a browser
send them; POSTs must also be ``application/json`` (not a form a foreign page could submit) and
a browser's ``Sec-Fetch-Site``/``Origin`` must say the request comes from this site.
"""

from __future__ import annotations

import enum
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from vmgrid.coordinator.web.errors import ApiError


class Role(enum.Enum):
    READ = "read"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Tokens:
    """The two accepted bearer tokens."""

    read: str
    """Lets a client read every GET endpoint."""
    operator: str
    """Lets a client read and act (POST, DELETE)."""

    @classmethod
    def generate(cls) -> Tokens:
        """Fresh random tokens (a demo or a manager started without configured tokens)."""
        return cls(read=secrets.token_urlsafe(24), operator=secrets.token_urlsafe(24))

    def role(self, presented: str) -> Role | None:
        """The role a presented token grants, or None; constant-time comparisons."""
        if hmac.compare_digest(presented.encode(), self.operator.encode()):
            return Role.OPERATOR
        if hmac.compare_digest(presented.encode(), self.read.encode()):
            return Role.READ
        return None


def authorize(request: web.Request, tokens: Tokens, needed: Role) -> None:
    """Raise ApiError(401/403) unless the request carries a token good enough for `needed`."""
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(401, "missing token: send 'Authorization: Bearer <token>'", "Authorization")
    role = tokens.role(presented.strip())
    if role is None:
        raise ApiError(
            401, "unknown token: use the read-only or the operator token", "Authorization"
        )
    if needed is Role.OPERATOR and role is not Role.OPERATOR:
        raise ApiError(403, "this action needs the operator token, not the read-only one")


def check_same_site(request: web.Request, json_body: bool = True) -> None:
    """Refuse actions a browser marks as cross-site, or whose Origin is another host; and,
    where the action takes a body (`json_body`), one that is not JSON."""
    site = request.headers.get("Sec-Fetch-Site", "")
    if site and site not in ("same-origin", "none"):
        raise ApiError(403, f"cross-site request refused (Sec-Fetch-Site: {site})", "Origin")
    origin = request.headers.get("Origin", "")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise ApiError(
            403, f"request from origin {origin!r} refused; only {request.host}", "Origin"
        )
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if json_body and content_type != "application/json":
        raise ApiError(
            415, f"Content-Type {content_type or '(none)'!r}: send application/json", "Content-Type"
        )
