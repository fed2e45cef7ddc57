"""A TCP proxy that misbehaves on purpose, between a puller (the hub, a mirror) and the peer it
pulls, run by asyncio in a thread of its own in the test's process.

Each connection carries one HTTP request (the sync client asks `Connection: close`). The answers
to the requests a test targets (feed pages by default; `times` of them, or all) come:

    pass       as they are
    delay      each `delay` seconds late (the request on its way, and the answer)
    trickle    `rate` bytes per second (the status line and headers at once)
    cut        the headers and `fraction` of the body, then the connection closed
    endless    the body, then blank chunks forever (chunked: no length to stop at)
    reset      the headers and `fraction` of the body, then a TCP reset
    duplicate  written twice; and the next targeted request answered with it again
    flip       one bit flipped in the body's byte at `fraction` of its length

Everything else is relayed untouched. What each connection was given is in `served`."""

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass, field

MODES = ("pass", "delay", "trickle", "cut", "endless", "reset", "duplicate", "flip")
FILLER = b"\r\n".join([b"%x" % 65536, b" " * 65536, b""])  # one chunk of blanks


@dataclass(frozen=True)
class Fault:
    mode: str = "pass"
    target: str = "/federation/v1/feed"  # path prefix of the requests whose answers misbehave
    times: int | None = None  # how many targeted answers misbehave (None: every one)
    delay: float = 0.2
    rate: float = 1.0
    fraction: float = 0.6

    def __post_init__(self) -> None:
        assert self.mode in MODES, self.mode


@dataclass
class Served:
    """What one connection asked and what it was given."""

    path: str
    mode: str
    sent: int = 0  # bytes written to the puller
    ended: str = ""  # how the connection ended
    gone: asyncio.StreamReader | None = field(default=None, repr=False)  # at EOF: hung up

    def hung_up(self) -> bool:
        return self.gone is not None and self.gone.at_eof()


@dataclass
class FaultProxy:
    """`url` stands for the peer at `upstream` (host, port); `set(mode, ...)` changes what the
    next connections get."""

    upstream: tuple[str, int]
    fault: Fault = field(default_factory=Fault)
    served: list[Served] = field(default_factory=list)
    port: int = 0
    _hits: int = 0
    _previous: bytes | None = None
    _tasks: set["asyncio.Task[None]"] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str, **options: object) -> None:
        self.fault = Fault(mode, **options)  # type: ignore[arg-type]
        self._hits, self._previous = 0, None
        self.served = []

    def faulted(self) -> list[Served]:
        return [s for s in self.served if s.mode != "pass"]

    def start(self) -> "FaultProxy":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        current = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is not current:
                task.cancel()

    # --- one connection --------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = Served("?", "pass", gone=reader)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # held until it ends: never collected while it waits
        try:
            request = await reader.readuntil(b"\r\n\r\n")  # a GET: no body
            served.path = request.split(b" ", 2)[1].decode("latin-1")
            fault = self.fault
            targeted = (
                fault.mode != "pass"
                and served.path.startswith(fault.target)
                and (fault.times is None or self._hits < fault.times)
            )
            if targeted:
                self._hits += 1
                served.mode = fault.mode
            self.served.append(served)
            await self._relay(request, served, fault, writer)
            served.ended = served.ended or "complete"
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            served.ended = f"puller gone: {type(exc).__name__}"
        except asyncio.CancelledError:  # the proxy stops
            served.ended = served.ended or "stopped"
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _relay(
        self, request: bytes, served: Served, fault: Fault, writer: asyncio.StreamWriter
    ) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        try:
            if served.mode == "delay":
                await asyncio.sleep(fault.delay)
            upstream_writer.write(request)
            await upstream_writer.drain()
            if served.mode in ("pass", "delay"):
                first = True
                while chunk := await upstream_reader.read(65536):
                    if first and served.mode == "delay":
                        await asyncio.sleep(fault.delay)
                    first = False
                    await self._send(writer, served, chunk)
                return
            answer = await upstream_reader.read()  # the peer closes after it (Connection: close)
        finally:
            upstream_writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        head += b"\r\n\r\n"
        await getattr(self, f"_{served.mode}")(writer, served, fault, head, body)

    async def _send(self, writer: asyncio.StreamWriter, served: Served, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        served.sent += len(data)

    async def _trickle(
        self, writer: asyncio.StreamWriter, served: Served, fault: Fault, head: bytes, body: bytes
    ) -> None:
        await self._send(writer, served, head)
        for n in range(len(body)):
            await asyncio.sleep(1 / fault.rate)
            if served.hung_up():
                served.ended = "puller hung up"
                return
            await self._send(writer, served, body[n : n + 1])

    async def _cut(
        self, writer: asyncio.StreamWriter, served: Served, fault: Fault, head: bytes, body: bytes
    ) -> None:
        await self._send(writer, served, head + body[: int(len(body) * fault.fraction)])
        served.ended = f"cut after {served.sent - len(head)} of {len(body)} bytes"

    async def _endless(
        self, writer: asyncio.StreamWriter, served: Served, fault: Fault, head: bytes, body: bytes
    ) -> None:
        lines = [
            line
            for line in head.split(b"\r\n")
            if line and not line.lower().startswith((b"content-length:", b"transfer-encoding:"))
        ]
        chunked = b"\r\n".join([*lines, b"Transfer-Encoding: chunked", b"", b""])
        await self._send(writer, served, chunked + b"%x\r\n" % len(body) + body + b"\r\n")
        while not served.hung_up():
            await self._send(writer, served, FILLER)
        served.ended = "puller hung up"

    async def _reset(
        self, writer: asyncio.StreamWriter, served: Served, fault: Fault, head: bytes, body: bytes
    ) -> None:
        await self._send(writer, served, head + body[: int(len(body) * fault.fraction)])
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # closed with linger 0: an RST, not a FIN
        served.ended = f"reset after {served.sent - len(head)} of {len(body)} bytes"

    async def _duplicate(
        self, writer: asyncio.StreamWriter, served: Served, fault: Fault, head: bytes, body: bytes
    ) -> None:
        answer = self._previous or head + body
        if self._previous is not None:
            served.ended = "answered with the previous targeted answer"
        self._previous = head + body
        await self._send(writer, served, answer + answer)

    async def _flip(
        self, writer: asyncio.StreamWriter, served: Served, fault: Fault, head: bytes, body: bytes
    ) -> None:
        at = int(len(body) * fault.fraction)
        flipped = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]
        served.ended = f"flipped byte {at} of {len(body)}: {body[at - 20 : at + 20]!r}"
        await self._send(writer, served, head + flipped)
