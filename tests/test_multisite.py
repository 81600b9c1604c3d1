"""Three probes, one central site, real processes (tests/support/multisite.py).

Each probe (daemon + Prometheus, network namespace of its own) remote_writes to VictoriaMetrics
and to a central Prometheus receiver; vmalert and the central Prometheus evaluate
central/rules/probes.yml + prometheus/rules/alerts.yml and each notifies its own Alertmanager.
Probes a and b run Prometheus as shipped, probe c in agent mode. One cut of a's and c's uplinks
(CUT_SECONDS, at the same time) serves both stores; b keeps sending throughout.

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

from tests.support.multisite import STORES, Multisite, MultisiteTiming, ProbeSpec
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
CUT = ("a", "c")
PROBES = {"a", "b", "c"}


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Multisite]:
    home: Path = tmp_path_factory.mktemp("multisite")
    probes = ("a", "b", ProbeSpec("c", prometheus_flags=["--enable-feature=agent"]))
    with Multisite("ms", home, probes=probes, timing=TIMING) as found:
        try:
            for store in STORES:
                wait_until(lambda store=store: probes_seen(found, store) == PROBES, 90,
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
    # (store, probe) -> when the sink received ProbeOffline for that probe
    firing: dict[tuple[str, str], float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def outage(sites: Multisite) -> Outage:
    """The cut probes' uplinks down for CUT_SECONDS; ProbeOffline notifications seen meanwhile."""
    for probe in CUT:
        sites.link(probe, up=False)
    found = Outage(cut=time.time())
    try:
        while time.time() - found.cut < CUT_SECONDS:
            for store in STORES:
                for received, body in sites.notifications(store, "ProbeOffline", "firing"):
                    for alert in body["alerts"]:
                        found.firing.setdefault((store, alert["labels"]["probe"]), received)
            time.sleep(0.5)
    finally:
        for probe in CUT:
            sites.link(probe, up=True)
        found.restored = time.time()
    for (store, probe), received in sorted(found.firing.items()):
        print(f"\n{store}: ProbeOffline for {probe} at the phone {received - found.cut:.1f} s "
              "after the cut")
    return found


@pytest.mark.parametrize("store", STORES)
def test_every_probes_series_are_queryable_centrally_with_its_probe_label(
        sites: Multisite, store: str) -> None:
    for expr, probes in (('up{job="home-monitor"}', PROBES), ("homemon_internet_up", PROBES),
                         ("homemon_ping_sent_total", PROBES),
                         # recording rules run on server-mode probes only
                         ("homemon:ping_loss_ratio:5m", {"a", "b"})):
        wait_until(lambda expr=expr, probes=probes: {
            r["metric"].get("probe") for r in sites.query(store, expr)} == probes,
            60, interval=1, what=f"{expr} of probes {sorted(probes)} in {store}")
    # the same series on the probe itself has no probe label: it is the external label
    local = sites.probe_query("a", 'up{job="home-monitor"}')
    assert local
    assert all("probe" not in r["metric"] for r in local)


@pytest.mark.parametrize("probe", CUT)
@pytest.mark.parametrize("store", STORES)
def test_probe_offline_reaches_the_central_alertmanager_while_the_uplink_is_down(
        sites: Multisite, outage: Outage, store: str, probe: str) -> None:
    assert (store, probe) in outage.firing, (
        f"no ProbeOffline for probe {probe} from {store} during the {CUT_SECONDS:.0f} s cut\n"
        + sites.logs())
    received = outage.firing[store, probe]
    assert outage.cut < received < outage.restored
    assert received - outage.cut <= OFFLINE_NOTIFY_LIMIT


@pytest.mark.parametrize("store", STORES)
def test_no_probe_offline_for_the_probe_that_kept_sending(
        sites: Multisite, outage: Outage, store: str) -> None:
    silent = {alert["labels"]["probe"] for _, body in sites.notifications(store, "ProbeOffline")
              for alert in body["alerts"]}
    assert silent <= set(CUT), f"ProbeOffline for a probe that kept sending: {silent}"


@pytest.mark.parametrize("probe", CUT)
@pytest.mark.parametrize("store", STORES)
def test_the_cut_is_backfilled_after_the_uplink_returns(
        sites: Multisite, outage: Outage, store: str, probe: str) -> None:
    window = int(outage.restored - outage.cut)
    expected = window / SCRAPE

    def cut_samples(name: str) -> list[float]:
        result = sites.query(store, f'up{{job="home-monitor", probe="{name}"}}[{window}s]',
                             at=outage.restored)
        return [float(t) for r in result for t, _ in r["values"]]

    def complete() -> list[float]:
        stamps = cut_samples(probe)
        return stamps if len(stamps) >= 0.9 * expected else []

    stamps = wait_until(complete, BACKFILL_LIMIT, interval=1,
                        what=f"probe {probe}'s samples of the cut in {store}")
    print(f"\n{store}: {probe}'s cut backfilled {time.time() - outage.restored:.1f} s after the "
          f"restore ({len(stamps)} samples for {window} s, probe b has {len(cut_samples('b'))})")
    gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:], strict=False)]
    assert max(gaps) <= 3 * SCRAPE, f"gap of {max(gaps):.0f} s in the cut window"
    assert stamps[0] - outage.cut <= 3 * SCRAPE
    assert outage.restored - stamps[-1] <= 3 * SCRAPE


@pytest.mark.parametrize("probe", CUT)
@pytest.mark.parametrize("store", STORES)
def test_probe_offline_resolves_once_the_probe_is_back(
        sites: Multisite, outage: Outage, store: str, probe: str) -> None:
    def resolved() -> list[float]:
        return [received for received, body in
                sites.notifications(store, "ProbeOffline", "resolved")
                if body["commonLabels"].get("probe") == probe and received > outage.restored]

    wait_until(resolved, 120, interval=1, what=f"ProbeOffline for {probe} resolved from {store}")
