"""A phone stand-in that can run inside a network namespace: records webhook POSTs to a file.

    ip netns exec NS python -m tests.support.stack_sink --port 8099 --out received.jsonl

Each POSTed JSON body becomes one line {"received": <unix time>, "path": "/…", "body": {...}}.
GET answers 200 so a caller can wait until it listens.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def serve(port: int, out: Path, host: str = "127.0.0.1") -> None:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            received = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                record = {"received": received, "path": self.path, "body": json.loads(body)}
            except ValueError:
                record = {"received": received, "path": self.path,
                          "invalid": body.decode(errors="replace")}
            with lock, out.open("a", encoding="utf-8") as file:
                file.write(json.dumps(record) + "\n")
            self._reply()

        def do_GET(self) -> None:  # noqa: N802
            self._reply()

        def _reply(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    ThreadingHTTPServer((host, port), Handler).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    serve(args.port, args.out, args.host)


if __name__ == "__main__":
    main()
