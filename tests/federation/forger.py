"""A peer that serves whatever bytes a test wrote: a forger, a replayer, a history rewriter.

    python forger.py DIRECTORY PORT

Serves DIRECTORY/checkpoint.json at /federation/v1/checkpoint (and any other NAME.json at
/federation/v1/NAME; /federation/v1/keys lists no rotation unless keys.json says otherwise)
and, at /federation/v1/feed,
the raw bytes of DIRECTORY/entries/<seq>.json for the requested `after`/`limit`, joined into a
page without re-encoding, so malformed entries reach the hub exactly as written. While
DIRECTORY/hold exists (20 s at most), feed pages wait: a slow peer; each page that waits first
writes DIRECTORY/waiting, so a test can wait for a subscriber to be stuck on it. While
DIRECTORY/dribble holds "N", every answer's body is sent one byte every N milliseconds (a peer
that trickles bytes); "N headers": its status line and headers too.
"""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(sys.argv[1])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        name = url.path.removeprefix("/federation/v1/")
        if name != "feed" and name.isalpha() and (ROOT / f"{name}.json").exists():
            self._send((ROOT / f"{name}.json").read_bytes())
        elif name == "keys":
            origin = (ROOT / "origin").read_text().strip()
            self._send(b'{"origin":"' + origin.encode() + b'","keys":[]}')
        elif url.path == "/federation/v1/feed":
            deadline = time.monotonic() + 20
            if (ROOT / "hold").exists():
                (ROOT / "waiting").touch()
            while (ROOT / "hold").exists() and time.monotonic() < deadline:
                time.sleep(0.05)  # a slow peer, until the test removes the file
            query = parse_qs(url.query)
            after = int(query.get("after", ["0"])[0])
            limit = int(query.get("limit", ["100"])[0])
            parts = []
            for seq in range(after + 1, after + limit + 1):
                entry = ROOT / "entries" / f"{seq}.json"
                if not entry.exists():
                    break
                parts.append(entry.read_bytes())
            origin = (ROOT / "origin").read_text().strip()
            self._send(
                b'{"origin":"'
                + origin.encode()
                + b'","entries":['
                + b",".join(parts)
                + b'],"next_after":null}'
            )
        else:
            self.send_error(404)

    def _send(self, body: bytes) -> None:
        if (ROOT / "dribble").exists():
            self._dribble(body, (ROOT / "dribble").read_text().split())
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _dribble(self, body: bytes, how: list[str]) -> None:
        """One byte every N ms, until all is sent or the subscriber hangs up."""
        head = (
            b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        if "headers" not in how:
            self.wfile.write(head)
            self.wfile.flush()
            head = b""
        try:
            for byte in head + body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(int(how[0]) / 1000)
        except OSError:  # the subscriber cut the connection
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
