"""ASGI middleware: what bounds a request's cost before any route sees it, and its id."""

import json
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

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
        declared = _content_length(scope)
        if declared == -1:
            await _refuse(send, 400, "Bad request", "the Content-Length header is not a number")
            return
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, 413, "Request body too large", self._detail())
            return
        await self._bounded(scope, receive, send)

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


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when there is none, -1 when it is not a number."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else -1
    return None


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


class RequestContext:
    """Each request's id (the caller's `X-Request-ID`, or a new one) bound to every log event
    it causes and echoed in the answer's `X-Request-ID`; a URL with a control character is a
    400 before any route sees it. Pure ASGI: no task or body copy per request, unlike
    Starlette's `BaseHTTPMiddleware`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = b""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                request_id = value
                break
        request_id = (request_id or uuid.uuid4().hex.encode())[:64]
        echoed = (b"x-request-id", request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), echoed]
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
            structlog.contextvars.unbind_contextvars("request_id")
