"""Logs: one JSON object a line on stderr, from structlog and the standard library alike.

The server's own events, its access log (`node.core.middleware.RequestContext`), uvicorn's and
Celery's messages, SQLAlchemy's and Alembic's: each line carries `timestamp`, `level`, `event`
and, when a request caused it, `request_id` (an outbox job carries the id of the request that
queued it). A database or broker that cannot be reached is one line with its `cause`, not a
traceback per request (`install`: a 503 to the client); any other exception keeps its traceback.
"""

import asyncio
import atexit
import json
import logging
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

# Every `integra` command configures its logs: the web framework is imported by the server only.
if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LEVELS |= {"error": logging.ERROR, "critical": logging.CRITICAL}


def configure(level: str | int = "info") -> None:
    """JSON lines on stderr for structlog and every standard library logger, at `level`."""
    number = level if isinstance(level, int) else LEVELS.get(level.lower(), logging.INFO)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        one_line_failures,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=_StderrLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared[:3], _logger_name, one_line_failures],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(number)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "alembic"):
        logging.getLogger(name).handlers[:] = []  # theirs would print a second, plain line
        logging.getLogger(name).propagate = True
    # Chatty at INFO (each statement, each migration context, each HTTP request to a peer):
    # their warnings are worth a line, the rest only when debugging.
    for name in ("sqlalchemy", "alembic", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(number, logging.WARNING))


def _dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def _logger_name(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if record is not None:
        event_dict["logger"] = record.name
    return event_dict


# What one write to a pipe (journald's, a container's log driver) keeps whole beside another
# process's writes (POSIX's PIPE_BUF on Linux): lines are joined into writes no longer.
WHOLE = 4096


class HeldLines:
    """Lines written at the end of the event loop's turn, joined: under load a server answers
    many requests a turn, and one write a line (each a system call, on a file or pipe its
    other workers write to as well) cost more than composing the line. Lines leave in the order
    they came, in writes of at most `WHOLE` bytes that start and end with a line, so that two
    processes' lines never interleave. Outside an event loop a line is written at once; any
    other log line first writes what is held, so the log keeps its order."""

    def __init__(self) -> None:
        self._held: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the flush waits on

    def write(self, line: str) -> None:
        """Write ``line`` (ending with a newline) at the end of this turn of the loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            _write(line)
            return
        if self._held and self._loop is not loop:  # held for a loop gone (a test's): now
            self.flush()
        if not self._held:
            loop.call_soon(self.flush)
            self._loop = loop
        self._held.append(line)

    def flush(self) -> None:
        if not self._held:
            return
        held, self._held, self._loop = self._held, [], None
        chunk: list[str] = []
        size = 0
        for line in held:
            length = len(line) if line.isascii() else len(line.encode())
            if chunk and size + length > WHOLE:
                _write("".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += length
        if chunk:
            _write("".join(chunk))


def _write(text: str) -> None:
    """To the stderr of the moment (a test may have replaced it)."""
    stream = sys.stderr
    stream.write(text)
    stream.flush()


held_lines = HeldLines()
atexit.register(held_lines.flush)


class _StderrLogger:
    """Writes each line to the stderr of the moment (a test may have replaced it), after the
    lines held for the loop's turn."""

    def msg(self, message: str) -> None:
        held_lines.flush()
        _write(message + "\n")

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class _StderrLoggerFactory:
    def __call__(self, *args: Any) -> _StderrLogger:
        return _StderrLogger()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def emit(self, record: logging.LogRecord) -> None:
        held_lines.flush()
        super().emit(record)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def unreachable(exc: BaseException) -> str | None:
    """`kind: cause` when `exc` says a database or broker cannot be reached; else None."""
    from kombu.exceptions import OperationalError as BrokerError
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.OperationalError | sa.InterfaceError):
        return f"database: {_first_line(exc.orig if exc.orig is not None else exc)}"
    if isinstance(exc, sa.TimeoutError):
        return f"database: {_first_line(exc)}"
    if isinstance(exc, BrokerError):
        return f"broker: {_first_line(exc)}"
    if isinstance(exc, ConnectionError):
        return f"connection: {_first_line(exc)}"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def one_line_failures(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A database or broker out of reach: its cause in one field instead of a traceback."""
    exc_info = event_dict.get("exc_info")
    if not exc_info:
        return event_dict
    if exc_info is True:
        exc_info = sys.exc_info()
    exc = exc_info if isinstance(exc_info, BaseException) else exc_info[1]
    cause = unreachable(exc) if exc is not None else None
    if cause is not None:
        del event_dict["exc_info"]
        event_dict["cause"] = cause
    return event_dict


def install(app: "FastAPI") -> None:
    """A database or broker out of reach during a request: one log line, a 503 to the client."""
    from fastapi.responses import JSONResponse
    from kombu.exceptions import OperationalError as BrokerError
    from sqlalchemy.exc import InterfaceError, OperationalError, TimeoutError

    async def unavailable(request: "Request", exc: Exception) -> "JSONResponse":
        cause = unreachable(exc) or _first_line(exc)
        structlog.get_logger().error("service_unavailable", path=request.url.path, cause=cause)
        detail = f"{cause.partition(':')[0]} unreachable; try again shortly"
        body = {"error": "Service unavailable", "detail": detail}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    for kind in (OperationalError, InterfaceError, TimeoutError, BrokerError):
        app.add_exception_handler(kind, unavailable)


def bound_request_id() -> str | None:
    """The request id bound to this context (the request being answered), if any."""
    context: MutableMapping[str, Any] = structlog.contextvars.get_contextvars()
    value = context.get("request_id")
    return value if isinstance(value, str) else None
