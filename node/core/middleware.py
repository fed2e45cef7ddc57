"""ASGI middleware that bounds what a request may cost before any route sees it."""

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

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


async def _refuse(send: Send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
