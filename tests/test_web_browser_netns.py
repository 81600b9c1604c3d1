"""The status page in a real browser: headless Chromium (Debian's) driven by Playwright, against
a real daemon whose jobs measure local stand-ins in network namespaces — the ICMP responder,
the HTTP speed server, iperf3, an airrohr device and dnsmasq. An outage is provoked by silencing
the responder; the page must list it with its duration and where it broke (the pinned router
went silent too: the home network), and show the path's hops and the DNS look-ups."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config
from tests.support.bandwidth_env import start_server
from tests.support.latency_netns import LatencyLab, Responder
from tests.support.netns import NetnsPair
from tests.support.procs import REPO, daemon, free_port, minimal_config, wait_until, write_config
from tests.support.web_lab import CHROMIUM

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (`make test` installs it)")

ISP, ROUTER = "10.77.1.1", "10.77.1.2"
PROFILES = [f"{ISP}:12:3:0.02", f"{ROUTER}:1:0.3:0"]  # loss rare: no outage of its own
AQI_PORT = 8081
DNS_NAME, DNS_ANSWER = "status-page.test", "192.0.2.80"  # an answer in a record, never dialled


@contextmanager
def stand_ins(pair: NetnsPair) -> Iterator[str]:
    """Speed server, iperf3 server, airrohr device and a DNS server in namespace b; yields the
    speed URL."""
    base = start_server(pair)
    dns = pair.popen_b(["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                        "--conf-file=/dev/null", f"--listen-address={pair.ip_b}",
                        "--bind-interfaces", "--port=53", f"--address=/{DNS_NAME}/{DNS_ANSWER}",
                        "--pid-file=", "--user=root", "--log-facility=-"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    iperf = pair.popen_b(["iperf3", "-s", "-p", "5201"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    aqi = pair.popen_b([sys.executable, "-m", "tests.support.web_lab", "aqi", "--port",
                        str(AQI_PORT)], cwd=REPO, stdout=subprocess.PIPE)
    assert aqi.stdout is not None
    assert aqi.stdout.readline().strip() == b"ready"
    try:
        yield base
    finally:
        for proc in (iperf, aqi, dns):
            proc.terminate()
            proc.wait(10)


def status(lab: LatencyLab, port: int) -> dict[str, Any]:
    code, body = lab.http_a(f"http://127.0.0.1:{port}/api/status")
    assert code == 200
    return json.loads(body)


def browse(pair: NetnsPair, url: str, outdir: Path) -> dict[str, Any]:
    done = subprocess.run(["ip", "netns", "exec", pair.ns_a, sys.executable, "-m",
                           "tests.support.web_lab", "browse", url, str(outdir)],
                          cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_status_page_in_chromium_shows_history_and_a_provoked_outage(tmp_path: Path) -> None:
    with NetnsPair("web") as pair, stand_ins(pair) as speed_url:
        lab = LatencyLab(pair, [ISP, ROUTER])
        responder = Responder(pair, lab.shared / "r1.json", PROFILES, seed=7)
        port = free_port()
        config = minimal_config(tmp_path, port, latency={
            "interval": "3s", "timeout": "3s", "count": 3, "packet_interval": "200ms",
            "packet_timeout": "1s",
            "targets": [{"host": ISP, "name": "isp", "internet": True},
                        {"host": ROUTER, "name": "router", "internet": False}],
            # the responder's addresses as the hops: silencing it silences the router too
            "path": {"discover": False, "gateway": ROUTER, "isp_hop": ISP},
            "dns": {"system": False, "resolvers": [pair.ip_b], "name": DNS_NAME,
                    "interval": "1s", "timeout": "500ms"}},
            bandwidth={"enabled": True, "interval": "20s", "timeout": "40s", "backend": "http",
                       "monthly_data_budget": "50GB",
                       "http": {"download_url": f"{speed_url}/download",
                                "upload_url": f"{speed_url}/upload", "duration": "2s",
                                "warmup": "500ms", "max_bytes": "50MB", "streams": 2}},
            iperf={"enabled": True, "interval": "30s", "timeout": "40s", "host": pair.ip_b,
                   "duration": "1s", "omit": "0s", "streams": 1},
            aqi={"enabled": True, "interval": "5s", "request_timeout": "2s",
                 "local": [{"name": "balcony",
                            "url": f"http://{pair.ip_b}:{AQI_PORT}/balcony/data.json"}]})
        config["log"]["level"] = "info"
        path = write_config(tmp_path / "home-monitor.yml", config)
        try:
            with daemon(path, netns=pair.ns_a, log_path=tmp_path / "daemon.log") as proc:
                wait_until(lambda: (s := status(lab, port))["internet"]["up"] is True
                           and s["speedtest"] and s["iperf"] and s["air"], 120,
                           interval=1, what="every job's first result")
                responder.stop()  # the outage: nothing answers
                wait_until(lambda: status(lab, port)["internet"]["up"] is False, 30,
                           interval=0.5, what="internet down on the page's data")
                time.sleep(5)
                responder = Responder(pair, lab.shared / "r2.json", PROFILES, seed=8)
                # 'internet back' comes with the first reply; the RTT with the next window
                api = wait_until(lambda: (s := status(lab, port))["internet"]["up"] is True
                                 and s["outages"] and s["targets"]["isp"]["rtt_ms"] and s,
                                 60, interval=0.5,
                                 what="internet back, the outage listed and an RTT again")
                report = browse(pair, f"http://127.0.0.1:{port}/", tmp_path / "screenshots")
                assert proc.poll() is None, "the daemon died"
        finally:
            responder.stop()
            lab.close()

    outage = api["outages"][0]
    assert outage["end"] is not None
    assert 3 <= outage["seconds"] <= 60, outage  # silenced 5 s + detection, 3 s rounds
    assert outage["cause"] == "home", outage  # the router was silent as well
    assert ROUTER in outage["detail"], outage
    assert [o["cause"] for o in api["outages"]] == ["home"]  # DNS answered all along
    assert {role: hop["address"] for role, hop in api["path"].items()} == {
        "home": ROUTER, "isp": ISP}
    assert api["path"]["home"]["rtt_ms"] > 0, api["path"]
    assert api["dns"][pair.ip_b]["up"] is True, api["dns"]
    assert api["dns"][pair.ip_b]["lookup_ms"] > 0, api["dns"]
    assert set(api["targets"]) == {"isp", "router"}
    assert api["targets"]["isp"]["rtt_ms"] > 0, api["targets"]
    assert api["budget"]["used_bytes"] > 0
    assert api["budget"]["budget_bytes"] == 50_000_000_000

    for width, seen in report["widths"].items():
        assert seen["console"] == [], (width, seen["console"])
        assert seen["bad_responses"] == [], (width, seen["bad_responses"])
        assert seen["scroll_width"] <= seen["inner_width"], (width, seen)  # no sideways scroll
        assert Path(seen["screenshot"]).stat().st_size > 10_000
        assert seen["internet"].startswith("Internet up")
        charts = {chart["caption"]: chart for chart in seen["charts"]}
        assert {caption.split(" ")[0] for caption in charts} >= {
            "Round-trip", "Throughput", "PM2.5", "PM10"}, charts.keys()
        for caption, chart in charts.items():
            assert chart["points"], caption
            assert all(points >= 1 for points in chart["points"]), (caption, chart)
            assert chart["width"] <= int(width), (caption, chart)
        first = {caption.split(" ")[0]: chart for caption, chart in charts.items()}
        assert first["Round-trip"]["loss_marks"] >= 1  # the outage lost every ping
        # speed test and iperf (a chart each), both directions
        assert sum(chart["dots"] for caption, chart in charts.items()
                   if caption.startswith("Throughput")) >= 4
        assert first["PM2.5"]["bands"] >= 3  # DAQI 1-3 (Low) at least; higher ones if reached
        start, end, duration, where = seen["outage_rows"][0]
        assert where.startswith(f"In your home network: your router ({ROUTER}) did not "
                                "answer"), seen["outage_rows"]
        assert re.fullmatch(r"\d\d:\d\d:\d\d", start), seen["outage_rows"]
        assert re.fullmatch(r"\d\d:\d\d:\d\d", end), seen["outage_rows"]
        assert re.fullmatch(r"\d+ s", duration), seen["outage_rows"]
        assert int(duration.split()[0]) == round(outage["seconds"])
        health = {row[0]: row[1] for row in seen["jobs"]}
        assert set(health) == set(Config().job_configs())  # every registered job runs here
        assert health["latency"] == "ok"
