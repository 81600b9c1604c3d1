"""The latency job against ground truth: a responder in namespace b with known delay/jitter/loss.

The job runs as a real process in namespace a (`home-monitor once latency` or the daemon); the
responder records the delay it actually applied to every request and which ones it dropped,
and the job's figures are compared with that record, not with the configured values.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.latency_netns import (
    NOBODY_GID,
    LatencyLab,
    applied_delays,
    binomial_interval,
    consecutive_jitter,
    log_lines,
    mean,
    parse_ts,
)
from tests.support.netns import NetnsPair, requires_netns
from tests.support.procs import stop_process, wait_until

pytestmark = [requires_netns, pytest.mark.netns, pytest.mark.slow]

# (delay ms, jitter ms, loss share); each gets its own address on b's loopback
SCENARIOS = {"no-delay": (0, 0, 0.0), "30ms": (30, 3, 0.10), "120ms": (120, 20, 0.30)}
MODES = {"raw": 1, "unprivileged": 2}  # third octet of the mode's target addresses
COUNT = 200
PACKET_INTERVAL = 0.015
PACKET_TIMEOUT = 0.2  # well above the slowest reply (140 ms), so late replies are not lost


def scenario_address(mode: str, scenario: str) -> str:
    return f"10.77.{MODES[mode]}.{list(SCENARIOS).index(scenario) + 1}"


@pytest.fixture(scope="module")
def ground_truth() -> Iterator[dict[str, Any]]:
    """Both socket modes measure all three scenarios at once (one round of 200 packets)."""
    addresses = [scenario_address(mode, name) for mode in MODES for name in SCENARIOS]
    profiles = [f"{scenario_address(mode, name)}:{delay}:{jitter}:{loss}"
                for mode in MODES for name, (delay, jitter, loss) in SCENARIOS.items()]
    with NetnsPair("lat") as pair:
        lab = LatencyLab(pair, addresses)
        try:
            lab.wait_ipv6_ready()  # the v6 target is measured from the first request
            lab.ping_group_range(NOBODY_GID, NOBODY_GID)  # nobody may, root (gid 0) may not
            outputs: dict[str, Any] = {}
            with lab.responder("truth", profiles) as responder:
                procs = {}
                for mode in MODES:
                    targets = [{"host": scenario_address(mode, name), "name": name,
                                "internet": True} for name in SCENARIOS]
                    targets += [{"host": pair.ip6_b, "name": "v6"}, "no-such-host.invalid"]
                    config = lab.write_config(f"{mode}.yml", {
                        "interval": "60s", "timeout": "60s", "count": COUNT,
                        "packet_interval": f"{PACKET_INTERVAL * 1000:g}ms",
                        "packet_timeout": f"{PACKET_TIMEOUT * 1000:g}ms",
                        "privileged": True if mode == "raw" else "auto",
                        "targets": targets})
                    procs[mode] = lab.monitor_a(
                        ["once", "latency", "--config", str(config)],
                        as_nobody=mode == "unprivileged",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for mode, proc in procs.items():
                    stdout, stderr = proc.communicate(timeout=120)
                    assert proc.returncode == 0, f"{mode}: {stdout}\n{stderr[-2000:]}"
                    outputs[mode] = json.loads(stdout[stdout.index("{\n"):])
                record = responder.stop()
            yield {"outputs": outputs, "record": record}
        finally:
            lab.close()


def _figures(truth: dict[str, Any], mode: str, scenario: str) -> tuple[dict[str, Any], list]:
    output = truth["outputs"][mode]
    figures = output["targets"][scenario]
    entries = truth["record"][scenario_address(mode, scenario)]
    return figures, entries


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("mode", MODES)
def test_rtt_loss_and_jitter_match_the_responders_record(ground_truth, mode, scenario):
    _, jitter_ms, loss_share = SCENARIOS[scenario]
    assert ground_truth["outputs"][mode]["socket"] == mode
    figures, entries = _figures(ground_truth, mode, scenario)
    delays = applied_delays(entries)
    base_figures, base_entries = _figures(ground_truth, mode, "no-delay")
    base_delays = applied_delays(base_entries)
    # the stack and both programs add this on top of the responder's delay
    baseline_ms = base_figures["avg_ms"] - mean(base_delays) * 1000
    truth_avg_ms = mean(delays) * 1000 + baseline_ms
    truth_jitter_ms = consecutive_jitter(delays) * 1000
    low, high = binomial_interval(COUNT, loss_share)
    lost = figures["sent"] - figures["received"]
    print(f"\n{mode:12} {scenario:8}: avg {figures['avg_ms']:8.3f} ms (truth {truth_avg_ms:8.3f},"
          f" baseline {baseline_ms:.3f}), jitter {figures['jitter_ms']:.3f} ms (truth "
          f"{truth_jitter_ms:.3f}), loss {figures['loss']:.3f} = {lost}/{figures['sent']} "
          f"(responder dropped {len(entries) - len(delays)}, 95% interval {low}..{high})")

    assert figures["sent"] == COUNT
    assert len(entries) == COUNT, "the responder saw a different number of requests"
    assert figures["received"] == len(delays), "every answer the responder sent is counted"
    assert low <= lost <= high
    assert figures["loss"] == pytest.approx(lost / COUNT, abs=1e-4)
    if scenario == "no-delay":
        assert 0 < baseline_ms < 1.0
    else:
        assert figures["avg_ms"] == pytest.approx(truth_avg_ms, abs=1.0)
    assert figures["jitter_ms"] == pytest.approx(truth_jitter_ms, abs=1.0)
    if jitter_ms:  # the comparison is not vacuous: the responder really varied its delay
        assert truth_jitter_ms > jitter_ms / 2


@pytest.mark.parametrize("mode", MODES)
def test_ipv6_target_is_measured(ground_truth, mode):
    v6 = ground_truth["outputs"][mode]["targets"]["v6"]
    assert v6["sent"] == COUNT
    assert v6["received"] > COUNT * 0.9
    assert 0 < v6["avg_ms"] < 50


@pytest.mark.parametrize("mode", MODES)
def test_a_name_that_does_not_resolve_fails_alone(ground_truth, mode):
    targets = ground_truth["outputs"][mode]["targets"]
    dead = targets["no-such-host.invalid"]
    assert dead["error"].startswith("does not resolve")
    assert (dead["sent"], dead["received"], dead["loss"]) == (COUNT, 0, 1.0)
    assert dead["avg_ms"] is None
    assert dead["jitter_ms"] is None
    assert all(targets[name]["received"] > 0 for name in SCENARIOS)


def _runs(log: list[dict[str, Any]], result: str) -> list[dict[str, Any]]:
    return [line for line in log if line.get("msg") == f"job latency {result}"]


def test_no_icmp_permission_fails_the_job_and_the_daemon_keeps_running():
    with NetnsPair("latp") as pair:
        lab = LatencyLab(pair, [])
        try:
            lab.ping_group_range(1, 0)  # closed; and nobody has no CAP_NET_RAW
            config = lab.write_config("noperm.yml", {
                "interval": "1s", "timeout": "5s", "count": 1, "packet_interval": "10ms",
                "packet_timeout": "500ms", "targets": [pair.ip_b]}, port=10132)
            once = lab.monitor_a(["once", "latency", "--config", str(config)], as_nobody=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            stdout, _ = once.communicate(timeout=60)
            assert once.returncode == 1
            error = json.loads(stdout[stdout.index("{\n"):])["error"]
            assert "ping_group_range" in error
            assert "CAP_NET_RAW" in error

            log_path = lab.shared / "noperm.log"
            with open(log_path, "w") as log_file:
                daemon = lab.monitor_a(["run", "--config", str(config)], as_nobody=True,
                                       stdout=log_file, stderr=subprocess.STDOUT)
                try:
                    wait_until(lambda: len(_runs(log_lines(log_path), "failure")) >= 2, 30,
                               what="two failed latency runs")
                    assert daemon.poll() is None, "the daemon must keep running"
                    status, body = lab.http_a("http://127.0.0.1:10132/healthz")
                    assert (status, body.strip()) == (200, "ok")
                    samples = lab.metrics_a(10132)
                    failures = samples[("homemon_job_runs_total",
                                        (("job", "latency"), ("result", "failure")))]
                    assert failures >= 2
                    assert not any(name == "homemon_ping_rtt_avg_seconds"
                                   for name, _ in samples), "a failed round exports no RTT"
                    assert math.isnan(samples[("homemon_internet_up", ())])
                    assert "CAP_NET_RAW" in _runs(log_lines(log_path), "failure")[0]["error"]
                finally:
                    stop_process(daemon)
        finally:
            lab.close()


OUTAGE_INTERVAL = 1.0
# (count - 1) x packet_interval + packet_timeout: a dead round, short next to the interval,
# since the first good round can start before the link is back (a round is a window, not an
# instant); plus 0.1 s for starting the round and scheduling on a loaded machine
OUTAGE_ROUND = (2 - 1) * 0.02 + 0.1 + 0.1
OUTAGE_LENGTH = 20.0


def test_outage_is_counted_once_with_its_length_and_a_dead_router_is_no_outage():
    with NetnsPair("lato") as pair:
        lab = LatencyLab(pair, ["10.77.1.1", "10.77.3.1"])
        try:
            config = lab.write_config("outage.yml", {
                "interval": f"{OUTAGE_INTERVAL:g}s", "timeout": "1s", "count": 2,
                "packet_interval": "20ms", "packet_timeout": "100ms",
                "targets": [{"host": "10.77.1.1", "name": "isp", "internet": True},
                            {"host": "10.77.3.1", "name": "router"}]}, port=10133)
            log_path = lab.shared / "outage.log"
            with lab.responder("isp", ["10.77.1.1:0:0:0"]) as responder, \
                    open(log_path, "w") as log_file:
                daemon = lab.monitor_a(["run", "--config", str(config)], stdout=log_file,
                                       stderr=subprocess.STDOUT)
                try:
                    _outage(lab, responder, log_path)
                finally:
                    stop_process(daemon)
        finally:
            lab.close()


def _outage(lab: LatencyLab, responder: Any, log_path: Any) -> None:
    def successes() -> list[dict[str, Any]]:
        return _runs(log_lines(log_path), "success")

    wait_until(lambda: len(successes()) >= 3, 30, what="three latency rounds")
    samples = lab.metrics_a(10133)
    assert samples[("homemon_internet_up", ())] == 1
    assert samples[("homemon_ping_up", (("target", "router"),))] == 0  # the router is dead...
    assert samples[("homemon_internet_outages_total", ())] == 0  # ...and that is no outage
    assert samples[("homemon_internet_outage_seconds_total", ())] == 0

    responder.stop()
    stopped = time.time()
    time.sleep(OUTAGE_LENGTH)
    with lab.responder("isp-again", ["10.77.1.1:0:0:0"]) as again:
        true_length = again.started - stopped
        wait_until(lambda: any(line["msg"].startswith("internet back after")
                               for line in log_lines(log_path)), 10, what="internet back")
        samples = lab.metrics_a(10133)
    log = log_lines(log_path)
    down = [line for line in log if line["msg"] == "internet down"]
    back = [line for line in log if line["msg"].startswith("internet back after")]
    detected_after = parse_ts(down[0]["ts"]) - stopped
    counted = samples[("homemon_internet_outage_seconds_total", ())]
    print(f"\noutage: true {true_length:.2f} s, counted {counted:.2f} s, logged "
          f"{back[0]['outage_seconds']} s; down detected {detected_after:.2f} s after the stop")

    assert len(down) == 1
    assert len(back) == 1
    assert samples[("homemon_internet_outages_total", ())] == 1
    assert samples[("homemon_internet_up", ())] == 1
    # one round: the scheduler's next tick plus that round running into its timeouts
    assert 0 < detected_after <= OUTAGE_INTERVAL + OUTAGE_ROUND
    assert counted == pytest.approx(true_length, abs=OUTAGE_INTERVAL)
    assert back[0]["outage_seconds"] == pytest.approx(counted, abs=0.01)


def test_names_are_resolved_per_round_and_a_hanging_dns_fails_only_its_target():
    """`ip netns exec` mounts /etc/netns/<ns>/{hosts,resolv.conf} over /etc: a name from the
    hosts file resolves, the DNS server is a black hole (routed to b, which drops it)."""
    with NetnsPair("latd") as pair:
        lab = LatencyLab(pair, ["10.77.1.1"])
        etc = Path("/etc/netns") / pair.ns_a
        try:
            etc.mkdir(parents=True)
            (etc / "hosts").write_text("10.77.1.1 isp.test\n")
            (etc / "resolv.conf").write_text("nameserver 10.77.9.53\noptions timeout:3 "
                                             "attempts:1\n")
            config = lab.write_config("dns.yml", {
                "timeout": "10s", "count": 3, "packet_interval": "20ms",
                "packet_timeout": "500ms",
                "targets": ["isp.test", "slow.example", {"host": "10.77.1.1", "name": "lit"}]})
            with lab.responder("dns", ["10.77.1.1:5:0:0"]):
                started = time.monotonic()
                once = lab.monitor_a(["once", "latency", "--config", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                stdout, stderr = once.communicate(timeout=60)
                elapsed = time.monotonic() - started
            assert once.returncode == 0, stderr[-2000:]
            output = json.loads(stdout[stdout.index("{\n"):])
        finally:
            shutil.rmtree(etc, ignore_errors=True)
            lab.close()
    targets = output["targets"]
    assert targets["isp.test"]["received"] == 3
    assert targets["lit"]["received"] == 3
    assert targets["slow.example"]["error"] == "does not resolve: no DNS answer within 0.5 s"
    assert targets["slow.example"]["sent"] == 3
    # the hanging look-up neither delays the round nor keeps the process from exiting
    assert output["round_seconds"] < 2.0
    assert elapsed < 3.0, f"`once` took {elapsed:.1f} s (the resolver waits 3 s)"


SILENT_COUNT = 5
SILENT_PACKET_INTERVAL = 0.2
SILENT_PACKET_TIMEOUT = 2.0


def test_a_silent_target_ends_its_round_packet_timeout_after_the_last_request():
    """The defaults (5 x 200 ms, 2 s): a host that never answers no longer makes the round
    last count x (packet_interval + packet_timeout) = 11 s, but about
    count x packet_interval + packet_timeout = 3 s, in both socket modes; a live target in the
    same round is measured as usual."""
    with NetnsPair("lats") as pair:
        lab = LatencyLab(pair, ["10.77.1.1", "10.77.1.2", "10.77.2.1", "10.77.2.2"])
        try:
            lab.ping_group_range(NOBODY_GID, NOBODY_GID)
            procs = {}
            with lab.responder("silent", ["10.77.1.1:5:0:0", "10.77.2.1:5:0:0"]):
                for mode in MODES:
                    live, silent = (f"10.77.{MODES[mode]}.{n}" for n in (1, 2))
                    config = lab.write_config(f"silent-{mode}.yml", {
                        "timeout": "15s", "count": SILENT_COUNT,
                        "packet_interval": f"{SILENT_PACKET_INTERVAL * 1000:g}ms",
                        "packet_timeout": f"{SILENT_PACKET_TIMEOUT:g}s",
                        "privileged": True if mode == "raw" else "auto",
                        "targets": [{"host": live, "name": "live"},
                                    {"host": silent, "name": "silent"}]})
                    procs[mode] = lab.monitor_a(["once", "latency", "--config", str(config)],
                                                as_nobody=mode == "unprivileged",
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                outputs = {}
                for mode, proc in procs.items():
                    stdout, stderr = proc.communicate(timeout=60)
                    assert proc.returncode == 0, f"{mode}: {stdout}\n{stderr[-2000:]}"
                    outputs[mode] = json.loads(stdout[stdout.index("{\n"):])
        finally:
            lab.close()
    schedule = SILENT_COUNT * SILENT_PACKET_INTERVAL + SILENT_PACKET_TIMEOUT
    for mode, output in outputs.items():
        print(f"\n{mode}: round {output['round_seconds']} s with a silent target "
              f"(count x packet_interval + packet_timeout = {schedule:g} s)")
        assert output["socket"] == mode
        targets = output["targets"]
        assert (targets["silent"]["sent"], targets["silent"]["received"]) == (SILENT_COUNT, 0)
        assert targets["silent"]["avg_ms"] is None
        assert targets["live"]["received"] == SILENT_COUNT
        assert 4 < targets["live"]["avg_ms"] < 50
        # the last request leaves after (count - 1) x packet_interval, then packet_timeout;
        # the extra second is slack for a loaded machine, far below the old 11 s
        assert (SILENT_COUNT - 1) * SILENT_PACKET_INTERVAL + SILENT_PACKET_TIMEOUT \
            <= output["round_seconds"] < schedule + 1.0
