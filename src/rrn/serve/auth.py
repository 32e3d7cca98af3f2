"""Who may use the service: a bearer token, and the rule that binds it to loopback without one.

With a token every route but ``/healthz`` needs ``Authorization: Bearer <token>``; a WebSocket
may give it as that header or as ``?token=`` (browsers cannot set headers on a WebSocket).
Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket

from rrn.errors import UserError


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only: 127.0.0.0/8, ::1, localhost."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token.

    Raises:
        UserError: ``host`` is not loopback and no token is set.
    """
    if not is_loopback(host) and not token:
        raise UserError(
            f"--host {host} makes the service reachable from other machines: set a token "
            "(--token or the RRN_TOKEN environment variable) so that only clients that know it "
            "can use it, or bind to 127.0.0.1"
        )


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def token_ok(expected: str | None, given: str | None) -> bool:
    """Whether ``given`` is the token (always true when the service has none)."""
    if not expected:
        return True
    if given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
