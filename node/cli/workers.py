"""`integra serve --workers N`: uvicorn's supervisor, each worker on a listening socket of its own.

With the one socket uvicorn binds and hands every worker, the worker that wakes first accepts a
whole burst of new connections (a proxy's keep-alive pool, a training room arriving at once)
and the others idle: two workers answered no faster than one. Sockets bound with SO_REUSEPORT
to the same port are handed new connections by the kernel in turn, so each worker gets its
share. The supervisor is uvicorn's own: workers started, a dead or hung one replaced, signals
passed on.
"""

import socket
import sys

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

# Where SO_REUSEPORT shares connections out: on other systems it only lets sockets coexist.
SHARES_PORTS = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


class ListeningWorker(multiprocess.Process):
    """A worker process that binds its own socket on the server's port when it starts."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:
        super().target([own_socket(self.config.host, self.config.port)])


def serve_workers(config: Config) -> None:
    """Run ``config.workers`` workers under uvicorn's supervisor until it is told to stop."""
    if SHARES_PORTS:
        # Every worker the supervisor starts (at first, in place of a dead one, on SIGTTIN)
        # is one of ours; this process is the supervisor and does nothing else.
        multiprocess.Process = ListeningWorker  # type: ignore[misc]
        sockets: list[socket.socket] = []
    else:
        sockets = [config.bind_socket()]
    multiprocess.Multiprocess(config, sockets=sockets).run()


def own_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` beside the server's other workers' (the kernel lets only
    processes of the same user join them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)  # the supervisor stops rather than start it again and again
    return sock
