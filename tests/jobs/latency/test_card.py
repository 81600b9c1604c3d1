"""The latency card: where each outage broke, the path's hops and DNS, in /api/status and on the
status page (rendered from the same dict; no HTTP here, that is test_web_browser_netns.py)."""

from __future__ import annotations

import re
import time

import pytest

from monitor.history import History
from monitor.jobs.latency.card import LatencyCard, outage_sentence
from monitor.jobs.latency.cause import DNS_CAUSE, Cause, decide
from monitor.outages import RecentOutages
from monitor.webpage.statuspage import StatusPage

ISP_DOWN = decide("192.168.1.1", True, "100.64.0.1", False)


def summary(up: bool, *, hops: bool = True, dns_ok: bool = True,
            dns_down_seconds: float | None = None) -> dict:
    return {"internet_up": int(up), "round_seconds": 1.0,
            "targets": {"cloudflare": {"avg_ms": 12.0, "jitter_ms": 0.5, "loss": 0.0}},
            "path": {"home": {"address": "192.168.1.1", "avg_ms": 0.8, "loss": 0.0},
                     "isp": {"address": "100.64.0.1", "avg_ms": 6.5, "loss": 0.25}} if hops
            else {},
            "dns": {"system": {"ok": int(dns_ok), "lookup_ms": 14.2 if dns_ok else None,
                               "error": None if dns_ok else "timed out"}},
            "dns_down_seconds": dns_down_seconds}


@pytest.mark.parametrize(("cause", "detail", "sentence"), [
    (ISP_DOWN.cause, ISP_DOWN.detail,
     "At your ISP: your router answered, the ISP's first hop (100.64.0.1) did not"),
    ("home", decide("192.168.1.1", False, None, None).detail,
     "In your home network: your router (192.168.1.1) did not answer"),
    ("upstream", decide("192.168.1.1", True, "100.64.0.1", True).detail,
     "Beyond your ISP: your router and the ISP's first hop (100.64.0.1) answered, no internet "
     "target did"),
    (DNS_CAUSE.cause, DNS_CAUSE.detail,
     "In DNS: pings to the internet answered, but names did not resolve"),
    ("unknown", decide(None, None, None, None).detail,
     "The home router is not known yet, so where it broke is unknown"),
    ("unknown", "", "Unknown"),
    (None, None, "Unknown"),  # an outage from before causes were kept
])
def test_the_outage_list_says_where_it_broke_in_one_sentence(cause, detail, sentence) -> None:
    assert outage_sentence(cause, detail) == sentence


def test_cause_and_detail_go_from_the_outage_log_to_the_api_and_the_page() -> None:
    now = time.time()
    log = RecentOutages()
    card = LatencyCard(log)
    history = History([card])
    history.observe("latency", "success", summary(True), now - 600)
    log.add(now - 500, now - 440, ISP_DOWN.cause, ISP_DOWN.detail)
    log.add(now - 200, now - 190, DNS_CAUSE.cause, DNS_CAUSE.detail)
    history.observe("latency", "success", summary(True), now - 100)
    page = StatusPage(history, [], [card])
    status = page.status(now)
    assert [(o["cause"], o["detail"], o["seconds"]) for o in status["outages"]] == [
        ("dns", DNS_CAUSE.detail, 10.0), ("isp", ISP_DOWN.detail, 60.0)]
    html = page.html().decode()
    cells = re.findall(r'<tr class="why"><td colspan="3">([^<]*)</td></tr>',
                       html.split('id="outages"')[1])
    assert cells == [outage_sentence("dns", DNS_CAUSE.detail),
                     outage_sentence("isp", ISP_DOWN.detail).replace("'", "&#x27;")]


def test_a_dns_outage_does_not_move_the_internets_up_since() -> None:
    now = time.time()
    log = RecentOutages()
    card = LatencyCard(log)
    history = History([card])
    history.observe("latency", "success", summary(False), now - 300)
    history.observe("latency", "success", summary(True), now - 250)
    log.add(now - 302, now - 260, ISP_DOWN.cause, ISP_DOWN.detail)
    log.add(now - 100, now - 80, DNS_CAUSE.cause, DNS_CAUSE.detail)  # pings answered all along
    history.observe("latency", "success", summary(True), now - 60)
    status = StatusPage(history, [], [card]).status(now)
    assert status["internet"]["for_seconds"] == 260  # since the internet outage's end


def test_hops_and_dns_are_in_the_api_and_on_the_latency_section() -> None:
    now = time.time()
    card = LatencyCard()
    history = History([card])
    history.observe("latency", "success", summary(True, dns_ok=False), now - 20)
    page = StatusPage(history, [], [card])
    status = page.status(now)
    assert status["path"]["home"] | {"at": None} == {
        "address": "192.168.1.1", "rtt_ms": 0.8, "loss_ratio": 0.0, "at": None}
    assert (status["path"]["isp"]["address"], status["path"]["isp"]["loss_ratio"]) == (
        "100.64.0.1", 0.25)
    assert status["dns"]["system"] | {"at": None} == {
        "up": False, "lookup_ms": None, "error": "timed out", "at": None}
    latency = page.html().decode().split('<section id="latency">')[1].split("</section>")[0]
    assert re.search(r"<td>ISP&#x27;s first hop</td><td>100\.64\.0\.1</td>"
                     r'<td class="n">6\.5 ms</td><td class="n">25 %</td>', latency)
    assert re.search(r"<td>home router</td><td>192\.168\.1\.1</td>", latency)
    assert re.search(r"DNS \(system\).*fails</b> timed out", latency)
    with history.lock:
        figures = {f.name: f.value for f in card.figures(history.view("latency"))}
    assert (figures["home router rtt"], figures["ISP's first hop loss"]) == (0.8, 0.25)
    assert "dns system lookup" in figures


def test_without_discovered_hops_the_api_says_so_and_the_page_has_no_path_table() -> None:
    now = time.time()
    card = LatencyCard()
    history = History([card])
    history.observe("latency", "success", summary(True, hops=False), now - 20)
    page = StatusPage(history, [], [card])
    assert page.status(now)["path"] == {}
    assert "path hop" not in page.html().decode()


def test_hop_rtt_is_drawn_beside_the_targets() -> None:
    now = time.time()
    card = LatencyCard()
    history = History([card])
    for k in range(3):
        history.observe("latency", "success", summary(True), now - 900 + 300 * k)
    with history.lock:
        charts = card.charts(history.view("latency"))
    assert [line.name for line in charts[0].lines] == ["cloudflare", "home router",
                                                       "ISP's first hop"]
    assert all(line.points for line in charts[0].lines)


def test_an_ongoing_outage_carries_the_cause_known_so_far() -> None:
    now = time.time()
    known: list[Cause | None] = [ISP_DOWN]
    card = LatencyCard(RecentOutages(), cause_now=lambda: known[0])
    history = History([card])
    history.observe("latency", "success", summary(True), now - 120)
    history.observe("latency", "success", summary(False), now - 30)
    ongoing = StatusPage(history, [], [card]).status(now)["outages"][0]
    assert (ongoing["end"], ongoing["cause"], ongoing["detail"]) == (None, "isp", ISP_DOWN.detail)
    assert ongoing["seconds"] == pytest.approx(31.0, abs=0.2)  # the window began 1 s earlier

    known[0] = None  # nothing decided yet: unknown, never a guess
    assert StatusPage(history, [], [card]).status(now)["outages"][0]["cause"] == "unknown"


def test_an_ongoing_dns_outage_is_listed_while_pings_answer() -> None:
    now = time.time()
    known: list[Cause | None] = [DNS_CAUSE]
    card = LatencyCard(RecentOutages(), cause_now=lambda: known[0])
    history = History([card])
    history.observe("latency", "success",
                    summary(True, dns_ok=False, dns_down_seconds=12.0), now - 10)
    status = StatusPage(history, [], [card]).status(now)
    assert status["internet"]["up"] is True
    assert [(o["cause"], o["end"], o["seconds"]) for o in status["outages"]] == [
        ("dns", None, 22.0)]
    known[0] = None  # names resolve again since the last run: not listed as going on
    assert StatusPage(history, [], [card]).status(now)["outages"] == []
