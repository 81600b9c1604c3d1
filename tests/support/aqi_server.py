"""A real HTTP server on loopback that plays data.sensor.community and airrohr devices.

Routes map a path to a Reply; a test changes them while the server runs. Requests are logged
(path and User-Agent) so tests can check what the daemon asked for.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    body: bytes | str | Any = b""  # bytes/str sent as is, anything else as JSON
    status: int = 200
    delay: float = 0.0
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class AqiServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        """`host`: loopback, or an address of a network the test made (a container's
        gateway, for the image running in a container)."""
        self.routes: dict[str, Reply] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                with outer._lock:
                    outer.requests.append((self.path, self.headers.get("User-Agent", "")))
                    reply = outer.routes.get(self.path)
                if reply is None:
                    reply = Reply("<html><body>404 Not Found</body></html>", 404, 0, "text/html")
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.payload()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"

    def set(self, path: str, reply: Reply | Any) -> None:
        with self._lock:
            self.routes[path] = reply if isinstance(reply, Reply) else Reply(reply)

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self.requests]


@contextmanager
def aqi_server(host: str = "127.0.0.1") -> Iterator[AqiServer]:
    server = AqiServer(host)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def sensor_path(sensor_id: int | str) -> str:
    return f"/airrohr/v1/sensor/{sensor_id}/"


def area_path(latitude: float, longitude: float, radius_km: float) -> str:
    return f"/airrohr/v1/filter/area={latitude:g},{longitude:g},{radius_km:g}"


def utc(timestamp: float, sep: str = " ") -> str:
    return time.strftime(f"%Y-%m-%d{sep}%H:%M:%S", time.gmtime(timestamp))


def record(sensor_id: int, timestamp: float, values: dict[str, Any], *,
           sensor_type: str = "SDS011", location_id: int = 1000, latitude: str = "51.501",
           longitude: str = "-0.121", country: str = "GB", indoor: int = 0,
           sep: str = " ") -> dict[str, Any]:
    """One record in the API's format: values and coordinates as strings."""
    return {
        "id": int(timestamp) * 10 + sensor_id % 10,
        "sampling_rate": None,
        "timestamp": utc(timestamp, sep),
        "location": {"id": location_id, "latitude": latitude, "longitude": longitude,
                     "altitude": "12.3", "country": country, "exact_location": 0,
                     "indoor": indoor},
        "sensor": {"id": sensor_id, "pin": "1",
                   "sensor_type": {"id": 14, "name": sensor_type, "manufacturer": "Nova Fitness"}},
        "sensordatavalues": [
            {"id": i, "value": v if isinstance(v, str) else f"{v}", "value_type": k}
            for i, (k, v) in enumerate(values.items())],
    }


def device_json(values: dict[str, Any], age: int = 30) -> dict[str, Any]:
    """An airrohr device's http://<ip>/data.json."""
    return {"software_version": "NRZ-2020-133", "age": str(age),
            "sensordatavalues": [{"value_type": k, "value": f"{v}"} for k, v in values.items()]}


def firmware_data_json(entries: list[tuple[str, str]], *, age: int = 30,
                       version: str = "NRZ-2024-135") -> str:
    """http://<device>/data.json byte for byte as the airrohr firmware builds it: a fixed head,
    one `{"value_type":…,"value":…},` per value (add_Value2Json), the last comma dropped, and
    the `age` spliced in before "sensordatavalues" by webserver_data_json. Values are strings,
    floats with two decimals (Arduino's String(float))."""
    values = "".join(f'{{"value_type":"{kind}","value":"{value}"}},' for kind, value in entries)
    return (f'{{"software_version": "{version}", "age":"{age}", '
            f'"sensordatavalues":[{values.rstrip(",")}]}}')
