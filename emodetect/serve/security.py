"""What a local web service owes its user's browser: a Host check (DNS rebinding), an Origin check
on the routes that take uploads (cross-site requests), and security headers on every answer.

Pure ASGI middleware, so request bodies still stream to the routes untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

# The page loads only its own scripts, styles and the pictures it makes (blob: URLs); it talks only
# to this server, and no other site may frame it.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
               "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
               "form-action 'self'; frame-ancestors 'none'")
# Swagger UI and ReDoc start with an inline script: their pages get a policy that allows it.
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

Scope = dict[str, Any]
App = Callable[[Scope, Callable, Callable], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


# A whole Host header: a name or a bracketed IPv6 address, then at most a port. Anything after it
# (`[::1]evil.example`, `127.0.0.1:1@evil.example`) is no host this server answers to (issue 34).
_HOST = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[^\[\]:@/\\\s]+))(?::[0-9]{1,5})?")


def _host_name(host: str) -> str:
    """'localhost:8000' -> 'localhost', '[::1]:8000' -> '::1'; '' for anything that is not exactly
    a host and an optional port."""
    match = _HOST.fullmatch(host)
    return (match["v6"] or match["name"]) if match else ""


class SecurityMiddleware:
    """Refuse a foreign Host (when `allowed_hosts` is given) and cross-origin POSTs; add headers."""

    def __init__(self, app: App, allowed_hosts: Iterable[str] | None = None):
        self.app = app
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = (_header(scope, b"host") or "").lower()
        if self.allowed_hosts is not None and _host_name(host) not in self.allowed_hosts:
            await _refuse(send, 400, f"Host header {host[:100]!r} is not one this server answers to "
                                     f"({', '.join(sorted(self.allowed_hosts))}); see emodetect serve --allowed-host")
            return
        origin = _header(scope, b"origin")
        # "null" is what a sandboxed frame sends: as foreign as any other site.
        if scope["method"] == "POST" and origin is not None:
            if origin == "null" or urlsplit(origin).netloc.lower() != host:
                await _refuse(send, 403, f"cross-origin request from {origin[:100]!r} refused: "
                                         "only pages served by this server may post to it")
                return
        policy = DOCS_POLICY if scope["path"].startswith(DOCS_PATHS) else PAGE_POLICY

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                            (b"referrer-policy", b"no-referrer"),
                            (b"content-security-policy", policy.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _websocket(self, scope: Scope, receive: Callable, send: Callable) -> None:
        """A WebSocket (WS /v1/voice/stream) from a foreign Host or another site's page is closed
        before it opens (HTTP 403): a page elsewhere must not stream into this server."""
        host = (_header(scope, b"host") or "").lower()
        origin = _header(scope, b"origin")
        foreign_host = self.allowed_hosts is not None and _host_name(host) not in self.allowed_hosts
        foreign_page = origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host)
        if foreign_host or foreign_page:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


async def _refuse(send: Callable, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})
