"""The HTTP boundary of the API: what every connection and request is held to, in one place.

Two layers share :data:`LIMITS`:

* :class:`GuardedHttpToolsProtocol`, uvicorn's httptools protocol with bounds it lacks: a whole request
  (head and body) must arrive within ``request_timeout_s`` of its first byte (or of the connection opening), the
  head within ``max_head_bytes`` and ``max_headers`` (431), and one process keeps at most ``max_connections``
  open (503). What it refuses, and what uvicorn refuses as malformed HTTP, is answered in JSON.
* :class:`RequestGuard`, ASGI middleware for what reaches the app: bodies over ``max_body_bytes`` (413, before
  parsing), bodies that are not plain JSON (415), ``HEAD`` served as ``GET`` without the body, ``Range``
  ignored (every file is small), security headers on every answer, and a JSON last resort for the unexpected.

:func:`server_config` is the uvicorn configuration ``serve`` runs, with these limits and no WebSocket support.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

import httptools
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from rec_lib.serving.redact import as_text, scrub


@dataclass(frozen=True)
class ServeLimits:
    """Bounds on what one API process accepts; the defaults suit loopback and a proxy in front alike."""

    request_timeout_s: float = 10.0
    """A request's head and body must arrive within this of its first byte (an idle new connection: of opening)."""
    keep_alive_s: float = 5.0
    """An idle keep-alive connection is closed after this."""
    max_head_bytes: int = 32 * 1024
    """Request line and headers together."""
    max_headers: int = 100
    max_body_bytes: int = 64 * 1024
    """200 liked ids and every genre fit in a few KB."""
    max_connections: int = 512
    """Open connections per process; one more is answered 503 and closed."""


LIMITS = ServeLimits()
DOCS_PATH = "/docs"
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
"""The Content-Security-Policy of every answer but /docs: only this server's own files, no inline code."""
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""Swagger UI starts from an inline script; its files are still this server's own."""
JSON_TYPE = "application/json"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

log = logging.getLogger("rec_lib.api")


def security_headers(policy: str = PAGE_POLICY) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", policy.encode()),
        (b"referrer-policy", b"no-referrer"),
    ]


def json_error(status: int, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of a JSON error answer; the detail is made safe to encode (lone surrogates escaped)."""
    body = json.dumps({"detail": as_text(detail)}).encode()
    headers = [
        (b"content-type", JSON_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *security_headers(),
    ]
    return headers, body


class RequestGuard:
    """ASGI middleware around every HTTP request (see the module docstring for what it enforces)."""

    def __init__(self, app: ASGIApp, limits: ServeLimits = LIMITS) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _send_json(send, *refusal)
            return
        body, complete = await _read_body(receive, self.limits.max_body_bytes)
        if body is None:  # the client went away
            return
        if not complete:
            await _send_json(send, 413, self._too_large())
            return
        head = scope["method"] == "HEAD"
        started = False
        policy = DOCS_POLICY if scope["path"] == DOCS_PATH else PAGE_POLICY
        inner = {**scope, "method": "GET" if head else scope["method"], "headers": _kept_headers(scope)}

        async def replay() -> Message:
            nonlocal body
            if body is None:
                return await receive()
            message, body = {"type": "http.request", "body": body, "more_body": False}, None
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-cache"))
                message = {**message, "headers": [*headers, *security_headers(policy)]}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(inner, replay, guarded_send)
        except Exception as exc:  # the last resort: a JSON answer and a scrubbed log line
            log.error("%s %s failed: %s: %s", scope["method"], scope["path"], type(exc).__name__, scrub(str(exc)))
            if not started:
                await _send_json(send, 500, "internal error; see the server log")

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Why a request is answered before its body is read, or None."""
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        declared = headers.get(b"content-length", b"0").strip()
        if not declared.isdigit():
            return 400, "Content-Length must be a whole number of bytes"
        if int(declared) > self.limits.max_body_bytes:
            return 413, self._too_large()
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"", b"identity"):
            return 415, "request bodies are read as they are: send them without a Content-Encoding"
        has_body = int(declared) > 0 or b"transfer-encoding" in headers
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope["method"] in BODY_METHODS and has_body and media_type != JSON_TYPE.encode():
            return 415, f"send the request body as JSON (Content-Type: {JSON_TYPE})"
        return None

    def _too_large(self) -> str:
        return f"request body over {self.limits.max_body_bytes} bytes"


def _kept_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The request's headers without ``Range`` and ``If-Range``: files are served whole (a bogus range would
    otherwise get Starlette's plain-text 416)."""
    return [(name, value) for name, value in scope.get("headers", []) if name.lower() not in (b"range", b"if-range")]


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, bool]:
    """The whole request body and True if it stays within ``limit``; ``(b"", False)`` past it; ``(None, True)``
    when the client went away."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks), True


async def _send_json(send: Send, status: int, detail: str) -> None:
    headers, body = json_error(status, detail)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol held to :class:`ServeLimits` (class attribute ``limits``); see the module
    docstring. Every refusal is a JSON answer followed by closing the connection."""

    limits: ServeLimits = LIMITS

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._refusing: tuple[int, str] | None = None
        self._start_head()
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, f"more than {self.limits.max_connections} open connections: try again shortly")
            return
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._received_in_head += len(data)
        super().data_received(data)
        unfinished = self._reading_head and self._received_in_head > self.limits.max_head_bytes
        if unfinished and not self.transport.is_closing():
            self._refuse(431, self._head_too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head()
        self._arm_deadline()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers_seen += 1
        if self._headers_seen > self.limits.max_headers:
            self._refuse_in_parser(431, f"more than {self.limits.max_headers} request headers")
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm_deadline()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers for a request its parser refused, in JSON (or the refusal a callback raised)."""
        self._refuse(*(self._refusing or (400, "malformed HTTP request")))

    def _start_head(self) -> None:
        self._reading_head = True
        # bytes received while the head is unfinished: bounds what the parser buffers of a header not yet complete
        self._received_in_head = 0
        self._head_bytes = 0
        self._headers_seen = 0

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.limits.max_head_bytes:
            self._refuse_in_parser(431, self._head_too_large())

    def _refuse_in_parser(self, status: int, detail: str) -> None:
        """Stop the parser from a callback; uvicorn then calls :meth:`send_400_response`, which answers this."""
        self._refusing = (status, detail)
        raise httptools.HttpParserCallbackError(detail)

    def _head_too_large(self) -> str:
        return f"request line and headers over {self.limits.max_head_bytes} bytes"

    def _arm_deadline(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.limits.request_timeout_s, self._timed_out)

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        self._refuse(408, f"the request did not arrive within {self.limits.request_timeout_s:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        self._disarm_deadline()
        if self.transport.is_closing():
            return
        headers, body = json_error(status, detail)
        head = [STATUS_LINE[status], *(name + b": " + value + b"\r\n" for name, value in headers)]
        self.transport.write(b"".join([*head, b"connection: close\r\n\r\n", body]))
        self.transport.close()


def guarded_protocol(limits: ServeLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class held to ``limits``."""
    if limits == GuardedHttpToolsProtocol.limits:
        return GuardedHttpToolsProtocol
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


def server_config(app, *, host: str, port: int, access_log: bool = True, limits: ServeLimits = LIMITS, **kwargs):
    """The uvicorn configuration of ``serve``: the guarded protocol, ``limits``, no WebSockets."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        http=guarded_protocol(limits),
        ws="none",
        timeout_keep_alive=limits.keep_alive_s,
        **kwargs,
    )
