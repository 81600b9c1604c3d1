"""Two probes, one central site, real processes (tests/support/multisite.py).

Each probe (daemon + Prometheus, network namespace of its own) remote_writes to VictoriaMetrics
and to a central Prometheus receiver; vmalert and the central Prometheus evaluate
central/rules/probes.yml + prometheus/rules/alerts.yml and each notifies its own Alertmanager.
One cut of probe a's uplink (CUT_SECONDS) serves both stores.

Shortened for the test (MultisiteTiming), everything else as shipped: scrape/evaluation 5 s
(15 s), remote_write batch_send_deadline 5 s (30 s), central evaluation 5 s (30 s), ProbeOffline
window 30 s (5 m), VictoriaMetrics -search.latencyOffset 5 s (30 s), ping rounds 5 s (15 s).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.multisite import STORES, Multisite, MultisiteTiming
from tests.support.netns import requires_netns
from tests.support.procs import wait_until

pytestmark = [requires_netns, pytest.mark.netns, pytest.mark.slow]

TIMING = MultisiteTiming(scrape_interval="5s", evaluation_interval="5s",
                         batch_send_deadline="5s", central_evaluation="5s",
                         offline_window="30s", vm_latency_offset="5s", ping_interval="5s")
SCRAPE = 5.0
CUT_SECONDS = 120.0
# window + latency offset + batch deadline + scrape + evaluation + Alertmanager's group_wait
# (5 s for critical): 55 s; twice that for a loaded 2-core machine
OFFLINE_NOTIFY_LIMIT = 110.0
BACKFILL_LIMIT = 90.0


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Multisite]:
    home: Path = tmp_path_factory.mktemp("multisite")
    with Multisite("ms", home, probes=("a", "b"), timing=TIMING) as found:
        try:
            for store in STORES:
                wait_until(lambda store=store: probes_seen(found, store) == {"a", "b"}, 90,
                           interval=1, what=f"both probes' series in {store}")
            yield found
        except BaseException:
            print(found.logs())
            raise


def probes_seen(sites: Multisite, store: str) -> set[str]:
    return {r["metric"].get("probe", "") for r in
            sites.query(store, 'max by (probe) (up{job="home-monitor"} == 1)')}


@dataclass
class Outage:
    cut: float
    restored: float = 0.0
    firing: dict[str, float] = field(default_factory=dict)   # store -> received at the sink


@pytest.fixture(scope="module")
def outage(sites: Multisite) -> Outage:
    """Probe a's uplink down for CUT_SECONDS; ProbeOffline notifications seen meanwhile."""
    found = Outage(cut=time.time())
    sites.link("a", up=False)
    try:
        while time.time() - found.cut < CUT_SECONDS:
            for store in STORES:
                if store not in found.firing:
                    for received, body in sites.notifications(store, "ProbeOffline", "firing"):
                        if body["commonLabels"].get("probe") == "a":
                            found.firing[store] = received
                            break
            time.sleep(0.5)
    finally:
        sites.link("a", up=True)
        found.restored = time.time()
    for store, received in found.firing.items():
        print(f"\n{store}: ProbeOffline at the phone {received - found.cut:.1f} s after the cut")
    return found


@pytest.mark.parametrize("store", STORES)
def test_both_probes_series_are_queryable_centrally_with_their_probe_label(
        sites: Multisite, store: str) -> None:
    for expr in ('up{job="home-monitor"}', "homemon_internet_up",
                 "homemon_ping_sent_total", "homemon:ping_loss_ratio:5m"):
        wait_until(lambda expr=expr: {r["metric"].get("probe") for r in
                                      sites.query(store, expr)} == {"a", "b"},
                   60, interval=1, what=f"{expr} of probes a and b in {store}")
    # the same series on the probe itself has no probe label: it is the external label
    local = sites.probe_query("a", 'up{job="home-monitor"}')
    assert local
    assert all("probe" not in r["metric"] for r in local)


@pytest.mark.parametrize("store", STORES)
def test_probe_offline_reaches_the_central_alertmanager_while_the_uplink_is_down(
        sites: Multisite, outage: Outage, store: str) -> None:
    assert store in outage.firing, (
        f"no ProbeOffline for probe a from {store} during the {CUT_SECONDS:.0f} s cut\n"
        + sites.logs())
    received = outage.firing[store]
    assert outage.cut < received < outage.restored
    assert received - outage.cut <= OFFLINE_NOTIFY_LIMIT
    others = [body["commonLabels"] for _, body in sites.notifications(store, "ProbeOffline")
              if body["commonLabels"].get("probe") != "a"]
    assert not others, f"ProbeOffline for a probe that kept sending: {others}"


@pytest.mark.parametrize("store", STORES)
def test_the_cut_is_backfilled_after_the_uplink_returns(
        sites: Multisite, outage: Outage, store: str) -> None:
    window = int(outage.restored - outage.cut)
    expected = window / SCRAPE

    def cut_samples(probe: str) -> list[float]:
        result = sites.query(store, f'up{{job="home-monitor", probe="{probe}"}}[{window}s]',
                             at=outage.restored)
        return [float(t) for r in result for t, _ in r["values"]]

    def complete() -> list[float]:
        stamps = cut_samples("a")
        return stamps if len(stamps) >= 0.9 * expected else []

    stamps = wait_until(complete, BACKFILL_LIMIT, interval=1,
                        what=f"probe a's samples of the cut in {store}")
    print(f"\n{store}: cut backfilled {time.time() - outage.restored:.1f} s after the restore"
          f" ({len(stamps)} samples for {window} s, probe b has {len(cut_samples('b'))})")
    gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:], strict=False)]
    assert max(gaps) <= 3 * SCRAPE, f"gap of {max(gaps):.0f} s in the cut window"
    assert stamps[0] - outage.cut <= 3 * SCRAPE
    assert outage.restored - stamps[-1] <= 3 * SCRAPE


@pytest.mark.parametrize("store", STORES)
def test_probe_offline_resolves_once_the_probe_is_back(
        sites: Multisite, outage: Outage, store: str) -> None:
    def resolved() -> list[float]:
        return [received for received, body in
                sites.notifications(store, "ProbeOffline", "resolved")
                if body["commonLabels"].get("probe") == "a" and received > outage.restored]

    wait_until(resolved, 120, interval=1, what=f"ProbeOffline resolved from {store}")
