"""What a deadline and a minimum rate per request to a peer cost.

    python bench/peer_requests.py [--requests 200] [--page-kb 1024]

Serves a feed page of `--page-kb` KiB and a checkpoint-sized answer (300 bytes) from a local
threaded HTTP server, and reads each `--requests` times with `federation.sync.client.fetch_json`
(a connection of its own per request, watched by a thread that cuts it at its deadline or below
the minimum rate), then with the baseline: the same httpx client streaming the answer over a
kept-alive connection with per-read timeouts only, and the same strict parse. Prints the mean
time per request of both and the difference. Nothing here is a pass/fail test.
"""

import argparse
import json

# ruff: noqa: E402 - the project imports after the sys.path fix.
import sys
import threading
import time
from pathlib import Path
from typing import Any

# bench/http.py would stand for the standard `http` module (httpx needs it) if this
# folder stayed first on sys.path, as it is when a script here runs.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from federation.canonical import parse_strict
from federation.sync.client import MAX_PAGE_BYTES, fetch_json


def answers(page_kb: int) -> dict[str, bytes]:
    entry = {"payload": {"title": "Mentoring programme", "summary": "Mentors meet weekly."}}
    one = len(json.dumps(entry)) + 1
    page = {"origin": "PT", "entries": [entry] * (page_kb * 1024 // one)}
    checkpoint = {"checkpoint": {"origin": "PT", "size": 1, "root": "0" * 64}, "key": "k"}
    return {
        "/page": json.dumps(page).encode(),
        "/checkpoint": json.dumps(checkpoint | {"sig": "s" * 86}).encode(),
    }


def serve(bodies: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive for the baseline

        def do_GET(self) -> None:
            body = bodies[self.path]
            close = self.headers.get("Connection", "").lower() == "close"
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                + ("Connection: close\r\n" if close else "")
                + "\r\n"
            )
            # One write: headers and body apart would meet the delayed ACK on a kept-alive
            # connection (40 ms a request), which is not what is measured here.
            self.wfile.write(head.encode() + body)
            self.close_connection = close

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def baseline(client: httpx.Client, url: str) -> Any:
    """The former read: per-read timeouts, a kept-alive connection, the same size limit."""
    with client.stream("GET", url) as response:
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > MAX_PAGE_BYTES:
                raise ValueError("too large")
    return parse_strict(bytes(data), max_bytes=MAX_PAGE_BYTES)


def mean_ms(read: Any, url: str, requests: int) -> float:
    read(url)  # warm
    start = time.perf_counter()
    for _ in range(requests):
        read(url)
    return (time.perf_counter() - start) / requests * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--page-kb", type=int, default=1024)
    args = parser.parse_args()
    server = serve(answers(args.page_kb))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"{args.requests} requests each; mean per request (ms)")
    print(f"{'answer':<22}{'watched':>10}{'baseline':>10}{'difference':>12}")
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
        for path, label in (
            ("/checkpoint", "checkpoint (300 B)"),
            ("/page", f"page ({args.page_kb} KiB)"),
        ):
            watched = mean_ms(lambda url: fetch_json(client, url), base + path, args.requests)
            plain = mean_ms(lambda url: baseline(client, url), base + path, args.requests)
            print(f"{label:<22}{watched:>10.2f}{plain:>10.2f}{watched - plain:>+12.2f}")
    server.shutdown()


if __name__ == "__main__":
    main()
