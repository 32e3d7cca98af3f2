"""Who may use the service: the rule that binds it to loopback without a token, and
:class:`Guard`, the middleware that checks Host, Origin and the bearer token before any route.

With a token every route but the public ones (``/healthz``, the page) needs
``Authorization: Bearer <token>``; a WebSocket may give it as that header or as ``?token=``
(browsers cannot set headers on a WebSocket). Tokens are compared in constant time.
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


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(value: str) -> str:
    """The name in a Host header or an origin's authority, without port or brackets, lower
    case: ``[::1]:8000`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware in front of every route: who may use the service, decided before any
    route runs, so a new route is protected without a line of its own.

    In order:

    1. Host: on a loopback address the Host header must name this machine (localhost,
       127.0.0.1, [::1]) or an ``allowed_hosts`` name: a web page cannot reach the service
       through a DNS name of its own that it re-points at 127.0.0.1 (DNS rebinding). On any
       other address, ``allowed_hosts`` (when given) lists the names accepted.
    2. Origin: a browser names the page that makes a WebSocket or cross-site request; one
       from another origin than the service's own (or ``allowed_origins``) is refused, so a page
       the user happens to open cannot drive the service (cross-site WebSocket hijacking).
       Clients that are not browsers send no Origin and are not affected.
    3. Token: every path but ``public`` needs ``Authorization: Bearer <token>`` (a WebSocket may
       give ``?token=``, browsers cannot set its headers).

    Refusals: HTTP 403 (host, origin) or 401 (token) with a JSON ``detail``; a WebSocket is
    closed with 1008 before it is accepted (the client sees the handshake refused with 403).
    """

    def __init__(
        self,
        app,
        *,
        token: str | None,
        bind: str,
        public: frozenset[str],
        allowed_hosts=(),
        allowed_origins=(),
    ):
        self.app, self.token, self.public = app, token, public
        hosts = {host_name(h) for h in allowed_hosts}
        self.hosts = hosts | LOOPBACK_NAMES if is_loopback(bind) else hosts or None
        self.origins = {o.strip().lower().rstrip("/") for o in allowed_origins}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is None:
            return await self.app(scope, receive, send)
        status, detail = refusal
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
            return None
        await _json_response(send, status, detail, status == 401)
        return None

    def refusal(self, scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, why) when the request may not go on, else None."""
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return 403, f"Host {host!r} is not a name of this service (--allowed-hosts)"
        origin = headers.get("origin")
        if origin is not None and not self.same_origin(origin, host):
            return 403, f"Origin {origin!r} may not use this service (--allowed-origins)"
        if scope["path"] in self.public:
            return None
        given = bearer(headers.get("authorization"))
        if given is None and scope["type"] == "websocket":
            given = _query_token(scope.get("query_string", b""))
        if not token_ok(self.token, given):
            return 401, "a valid 'Authorization: Bearer <token>' header is required"
        return None

    def same_origin(self, origin: str, host: str) -> bool:
        origin = origin.strip().lower().rstrip("/")
        if origin in self.origins:
            return True
        scheme, sep, authority = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and authority == host.strip().lower()


def _query_token(query: bytes) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(query.decode("latin-1")).get("token")
    return values[0] if values else None


async def _json_response(send, status: int, detail: str, challenge: bool) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if challenge:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
