"""structlog key=value events, each carrying the request id of the request that caused it."""

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def configure(level: int = logging.INFO) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.KeyValueRenderer(
                key_order=["timestamp", "level", "event", "request_id"], drop_missing=True
            ),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )


CONTROL = re.compile(rb"%(?:0[0-9a-fA-F]|1[0-9a-fA-F]|7[fF])")


async def refuse_control_characters(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """No URL of this API needs a control character (NUL breaks PostgreSQL text): a 400, early."""
    raw = request.scope.get("raw_path", b"") + b"?" + request.scope.get("query_string", b"")
    if CONTROL.search(raw):
        return JSONResponse(
            {"error": "Bad request", "detail": "control characters are not allowed in the URL"},
            status_code=400,
        )
    return await call_next(request)


async def request_id_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id[:64])
    try:
        response = await call_next(request)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    response.headers["X-Request-ID"] = request_id[:64]
    return response
