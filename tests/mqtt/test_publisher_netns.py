"""Internet down and back reach Home Assistant within seconds, between the job's runs.

In a namespace pair the test builds: the daemon, Mosquitto and `mosquitto_sub` run in `a`, the
only internet target is `b`; `b` stops answering pings (sysctl), then answers again. The latency
job runs once a minute, so only the publisher's between-runs check can be what sends the edges.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.mosquitto import broker
from tests.support.netns import NetnsPair
from tests.support.procs import daemon, free_port, minimal_config, wait_until, write_config

STATE = "home-monitor/latency/state"


class Lines:
    """mosquitto_sub -v output: 'topic payload' lines, each stamped when the test first saw it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[float, dict[str, Any]]] = []

    def poll(self) -> list[tuple[float, dict[str, Any]]]:
        lines = self.path.read_text().splitlines()
        for line in lines[len(self.seen):]:
            topic, _, payload = line.partition(" ")
            assert topic == STATE
            self.seen.append((time.monotonic(), json.loads(payload)))
        return self.seen

    def first(self, after: float, internet: str) -> tuple[float, dict[str, Any]] | None:
        return next(((at, state) for at, state in self.poll()
                     if at > after and state["internet"] == internet), None)


def test_internet_edges_are_published_between_runs(tmp_path: Path) -> None:
    with NetnsPair("mq") as pair:
        home = tmp_path / "broker"
        home.mkdir()
        with broker(home, netns=pair.ns_a) as running:
            out = tmp_path / "sub.txt"
            with open(out, "wb") as sink:
                sub = pair.popen_a(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(running.port),
                                    "-t", STATE, "-v"], stdout=sink, stderr=subprocess.STDOUT)
            lines = Lines(out)
            port = free_port()
            config = minimal_config(tmp_path, port, latency={
                "enabled": True, "interval": "60s", "count": 1, "packet_interval": "200ms",
                "packet_timeout": "500ms", "outage_after": 3,
                "targets": [{"host": pair.ip_b, "name": "b", "internet": True}]})
            config["mqtt"] = {"url": running.url}
            path = write_config(tmp_path / "home-monitor.yml", config)
            try:
                with daemon(path, netns=pair.ns_a, log_path=tmp_path / "daemon.log"):
                    started = time.monotonic()
                    wait_until(lambda: lines.first(0, "ON"), 20, what="the first run's state")
                    cut = time.monotonic()
                    pair.sysctl("b", "net.ipv4.icmp_echo_ignore_all=1")
                    down_at, down = wait_until(lambda: lines.first(cut, "OFF"), 10, 0.05,
                                               what="internet OFF")
                    pair.sysctl("b", "net.ipv4.icmp_echo_ignore_all=0")
                    restored = time.monotonic()
                    up_at, up = wait_until(lambda: lines.first(restored, "ON"), 10, 0.05,
                                           what="internet ON again")
                    assert up_at - started < 55, "the next run came first: proves nothing"
            finally:
                sub.terminate()
                sub.wait(5)
    # down after outage_after slots of 200 ms plus the 500 ms packet timeout, sent within 1 s
    assert down_at - cut < 4.0
    assert up_at - restored < 3.0
    assert down["rtt_b"] == up["rtt_b"]  # no run in between: the run's figures are unchanged
    assert up["last_outage"] > 0
    assert up["last_outage_attributes"]["start"] < up["last_outage_attributes"]["end"]
    print(f"internet OFF published {down_at - cut:.1f} s after the target went silent, ON "
          f"{up_at - restored:.1f} s after it answered again")
