"""ASGI middleware: what bounds a request's cost before any route sees it, and its id."""

import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import structlog

from node.core.logs import held_lines

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """The body went past the limit while it was being read."""


class BodyLimit:
    """Refuse a request body longer than `max_bytes` with a 413, before it is read: at once
    when its Content-Length says so, or as soon as a chunked body (no Content-Length) goes
    past the limit. A route that was reading it never sees more than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_headers(scope)
        if declared == -1:
            await _refuse(send, 400, "Bad request", "the Content-Length header is not a number")
            return
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, 413, "Request body too large", self._detail())
            return
        if declared is not None or chunked:
            await self._bounded(scope, receive, send)
        else:  # no body (HTTP/1.1 sends one only with a length or chunked): nothing to count
            await self.app(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        read, exceeded, started = 0, False, False

        async def counted() -> Message:
            nonlocal read, exceeded
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:  # what the app answers to a body cut short gives way to the 413
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except BodyTooLarge:
            pass
        if exceeded and not started:
            await _refuse(send, 413, "Request body too large", self._detail())

    def _detail(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """The declared length (None when there is none, -1 when it is not a number), and whether
    a body may come without one (`Transfer-Encoding`, or a protocol other than HTTP/1.x)."""
    declared, chunked = None, not str(scope.get("http_version", "1.1")).startswith("1")
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            declared = int(text) if text.isdigit() and len(text) < 20 else -1
            if declared == -1:
                return declared, chunked
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


async def _refuse(send: Send, status: int, error: str, detail: str, *, close: bool = True) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:  # the body was not read: the connection cannot serve another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# No URL of this API needs a control character (NUL breaks PostgreSQL text).
CONTROL = re.compile(rb"%(?:0[0-9a-fA-F]|1[0-9a-fA-F]|7[fF])")


# What every answer carries unless the app set its own (the web pages set a fuller policy).
SURFACE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)
# An API answer loads nothing and may not be framed; an HTML page without a policy of its own
# (Swagger UI's) may at least not be framed.
API_POLICY = b"default-src 'none'; frame-ancestors 'none'"
PAGE_POLICY = b"frame-ancestors 'none'"
HSTS = (b"strict-transport-security", b"max-age=31536000")
NO_STORE = (b"cache-control", b"no-store")
# (scope after the app ran, status, seconds): how the composition root counts each answer.
Observer = Callable[[Scope, int, float], None]


class RequestContext:
    """Each request's id (the caller's `X-Request-ID`, or a new one) bound to every log event
    it causes and echoed in the answer's `X-Request-ID`; a URL with a control character is a
    400 before any route sees it. Every answer gets the surface headers it lacks (no sniffing,
    no framing, a referrer policy, a content policy; HSTS over HTTPS) and, when the request
    carried credentials (a bearer token, or the web's `session_cookie`), `Cache-Control:
    no-store`. Each answer is then logged (`access_log`) and given to `observe` with its time.
    Pure ASGI: no task or body copy per request, unlike Starlette's `BaseHTTPMiddleware`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        observe: Observer | None = None,
        access_log: bool = False,
        session_cookie: str | None = None,
    ) -> None:
        self.app, self.observe, self.access_log = app, observe, access_log
        self.cookie = f"{session_cookie}=".encode() if session_cookie else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id, credentials = b"", False
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                request_id = value
            elif name == b"authorization" or (
                name == b"cookie" and self.cookie is not None and self.cookie in value
            ):
                credentials = True
        request_id = (request_id or uuid.uuid4().hex.encode())[:64]
        echoed = (b"x-request-id", request_id)
        status = 500  # what the client gets if the app raises before it answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _surface(
                    message.get("headers", []), echoed, credentials, scope.get("scheme")
                )
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id.decode("latin-1"))
        try:
            raw = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
            if CONTROL.search(raw):
                await _refuse(
                    send_with_id,
                    400,
                    "Bad request",
                    "control characters are not allowed in the URL",
                    close=False,
                )
                return
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - began
            if self.observe is not None:
                self.observe(scope, status, elapsed)
            if self.access_log:
                _log_access(scope, status, elapsed, request_id)
            structlog.contextvars.unbind_contextvars("request_id")


def _surface(
    headers: Any, echoed: tuple[bytes, bytes], credentials: bool, scheme: str | None
) -> list[tuple[bytes, bytes]]:
    out = list(headers)
    present = {name.lower() for name, _ in out}
    out.append(echoed)
    out.extend(h for h in SURFACE_HEADERS if h[0] not in present)
    if b"content-security-policy" not in present:
        html = any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in out)
        out.append((b"content-security-policy", PAGE_POLICY if html else API_POLICY))
    if credentials and b"cache-control" not in present:
        out.append(NO_STORE)
    if scheme == "https" and HSTS[0] not in present:
        out.append(HSTS)
    return out


def route_of(scope: Scope) -> str:
    """The template of the route that answered (`/api/v1/practices/{practice_id}`), read from
    what the router left in the scope: no second matching. `<unmatched>` when none did."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else "<unmatched>"


def _log_access(scope: Scope, status: int, elapsed: float, request_id: bytes) -> None:
    """One `request` line, shaped as every other log line but composed here: structlog's chain
    (the context variables merged, then rendered) costs several times as much, on every
    request. It leaves with the turn's other lines (`node.core.logs.HeldLines`)."""
    client = scope.get("client")
    line = {
        "method": scope.get("method"),
        "path": scope.get("path"),
        "route": route_of(scope),
        "status": status,
        "ms": round(elapsed * 1000, 2),
        "client": client[0] if client else None,
        "event": "request",
        "request_id": request_id.decode("latin-1"),
        "level": "info",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    held_lines.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
