"""Several probes and one central site, each in its own network namespace, all real processes.

    with Multisite("ms", tmp_path, probes=("a", "b")) as sites:
        sites.query("victoriametrics", 'up{job="home-monitor"}')
        sites.link("a", up=False)                 # cut probe a's uplink

Namespace `hub` (the central site) is wired to every probe by its own veth pair:
probe i (1-based) is 10.78.i.2, the hub answers it on 10.78.i.1. In the hub, listening on all
of its addresses: VictoriaMetrics :8428 + vmalert, the central Prometheus :9090 (remote-write
receiver) and one Alertmanager + webhook sink per store, so a notification tells which store's
rules sent it. In each probe: the daemon on 127.0.0.1:10132 and Prometheus on 127.0.0.1:9090
with the repo's prometheus.yml, its `probe` external label and the remote_write block of
docs/stack.md (one entry per store).

The central processes run with the flags of central/docker-compose.yml, mapped mechanically
(service names -> loopback ports, container paths -> the test's directory, `${VAR:-default}`
-> default). What a caller's `MultisiteTiming` shortens is the only other change.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.netns import _run
from tests.support.procs import daemon, wait_until, write_config
from tests.support.stack_configs import REPO, fenced_blocks, load_yaml, write_alertmanager_copy
from tests.support.stack_e2e import Timing, netns_http_get, prometheus_config_here

STORES = ("victoriametrics", "prometheus")
VM_PORT, VMALERT_PORT, CENTRAL_PROM_PORT = 8428, 8880, 9090
AM_PORTS = {"victoriametrics": 9093, "prometheus": 9094}
SINK_PORTS = {"victoriametrics": 8099, "prometheus": 8098}
STORE_PORTS = {"victoriametrics": VM_PORT, "prometheus": CENTRAL_PROM_PORT}
PROBE_PROM_PORT, MONITOR_PORT = 9090, 10132
WRITE_PATH = "/api/v1/write"


@dataclass(frozen=True)
class MultisiteTiming:
    """What the test shortens; None keeps what the repo ships."""

    scrape_interval: str | None = None        # probes' prometheus.yml (15s)
    evaluation_interval: str | None = None    # probes' prometheus.yml (15s)
    batch_send_deadline: str | None = None    # docs/stack.md remote_write (30s)
    central_evaluation: str | None = None     # vmalert -evaluationInterval, central prometheus.yml
    offline_window: str | None = None         # ProbeOffline's [5m] in central/rules/probes.yml
    vm_latency_offset: str | None = None      # VictoriaMetrics -search.latencyOffset (30s)
    ping_interval: str | None = None          # config/home-monitor.yml latency interval (15s)


@dataclass
class ProbeSpec:
    name: str
    latency_targets: list[dict[str, Any]] | None = None   # None: ping the hub (its uplink)
    extra_jobs: dict[str, Any] = field(default_factory=dict)
    prometheus_flags: list[str] = field(default_factory=list)   # e.g. agent mode
    collector: str = "prometheus"             # or "vmagent": scrapes and forwards, nothing else
    send_metadata: bool | None = None         # None: as docs/stack.md's snippet says
    helpers: list[list[str]] = field(default_factory=list)     # started before the daemon
    stores: tuple[str, ...] = STORES


def docs_remote_write() -> dict[str, Any]:
    """The remote_write endpoint of the snippet in docs/stack.md that promtool checks."""
    docs = (REPO / "docs" / "stack.md").read_text(encoding="utf-8")
    (snippet,) = fenced_blocks(docs, "checked: remote-write")
    return yaml.safe_load(snippet)["remote_write"][0]


def expand_defaults(text: str) -> str:
    """Compose's ${VAR:-default} -> default (the test sets no variables)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def compose_command(service: str, *, paths: dict[str, str], hosts: dict[str, str],
                    override: dict[str, str]) -> list[str]:
    """The service's command in central/docker-compose.yml, mapped for a process here:
    a flag value that is (or is under) a container path moves to `paths[path]`, service
    addresses become `hosts[...]`, flags in `override` get its value (or are added)."""
    compose = yaml.safe_load((REPO / "central" / "docker-compose.yml").read_text())
    override = dict(override)
    args = []
    for arg in compose["services"][service]["command"]:
        flag, has_value, value = expand_defaults(arg).partition("=")
        if not has_value:
            args.append(flag)
            continue
        for old, new in paths.items():
            if value == old or value.startswith(old + "/"):
                value = new + value[len(old):]
                break
        for old, new in hosts.items():
            value = value.replace(old, new)
        args.append(f"{flag}={override.pop(flag, value)}")
    return args + [f"{flag}={value}" for flag, value in override.items()]


class Multisite:
    def __init__(self, tag: str, home: Path, probes: Iterable[ProbeSpec | str],
                 timing: MultisiteTiming | None = None, stores: tuple[str, ...] = STORES
                 ) -> None:
        suffix = secrets.token_hex(2)
        self.home, self.timing, self.stores = home, timing or MultisiteTiming(), stores
        self.hub = f"hm-{tag}-{suffix}-hub"
        self.probes = [p if isinstance(p, ProbeSpec) else ProbeSpec(p) for p in probes]
        self.ns = {p.name: f"hm-{tag}-{suffix}-{p.name}" for p in self.probes}
        self.veth = {p.name: (f"hm{suffix}h{i}", f"hm{suffix}p{i}")
                     for i, p in enumerate(self.probes, 1)}
        self.hub_ip = {p.name: f"10.78.{i}.1" for i, p in enumerate(self.probes, 1)}
        self.probe_ip = {p.name: f"10.78.{i}.2" for i, p in enumerate(self.probes, 1)}
        self.sink_files = {store: home / f"phone-{store}.jsonl" for store in stores}
        self._procs: list[subprocess.Popen[Any]] = []
        self.named: dict[str, subprocess.Popen[Any]] = {}   # log name (no .log) -> process
        self._stack = contextlib.ExitStack()

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Multisite:
        try:
            self._wire()
            self._start_central()
            for probe in self.probes:
                self._start_probe(probe)
            self._wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # All at once, with one deadline: a probe's Prometheus waits up to a minute to flush its
        # queue to a store that is stopping too.
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self._procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._stack.close()
        for ns in (self.hub, *self.ns.values()):
            for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                      text=True).stdout.split():
                subprocess.run(["kill", "-9", pid], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def _wire(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        for ns in (self.hub, *self.ns.values()):
            _run(["ip", "netns", "add", ns])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for name, ns in self.ns.items():
            hub_dev, probe_dev = self.veth[name]
            _run(["ip", "link", "add", hub_dev, "netns", self.hub, "type", "veth",
                  "peer", "name", probe_dev, "netns", ns])
            _run(["ip", "-n", self.hub, "addr", "add", f"{self.hub_ip[name]}/24", "dev", hub_dev])
            _run(["ip", "-n", ns, "addr", "add", f"{self.probe_ip[name]}/24", "dev", probe_dev])
            _run(["ip", "-n", self.hub, "link", "set", hub_dev, "up"])
            _run(["ip", "-n", ns, "link", "set", probe_dev, "up"])

    def popen(self, ns: str, cmd: list[str], log_name: str) -> subprocess.Popen[Any]:
        log = self._stack.enter_context((self.home / log_name).open("wb"))
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=log,
                                stderr=subprocess.STDOUT, cwd=self.home)
        self._procs.append(proc)
        self.named[log_name.removesuffix(".log")] = proc
        return proc

    # --- the central site --------------------------------------------------------------------

    def _rules_dir(self) -> Path:
        rules = self.home / "central-rules"
        rules.mkdir(exist_ok=True)
        probes = (REPO / "central" / "rules" / "probes.yml").read_text(encoding="utf-8")
        if self.timing.offline_window:
            assert "[5m]" in probes
            probes = probes.replace("[5m]", f"[{self.timing.offline_window}]")
        (rules / "probes.yml").write_text(probes)
        (rules / "alerts.yml").write_text(
            (REPO / "prometheus" / "rules" / "alerts.yml").read_text(encoding="utf-8"))
        return rules

    def _start_central(self) -> None:
        rules = self._rules_dir()
        for store in self.stores:
            sink = self.sink_files[store]
            sink.touch()
            self.popen(self.hub, [sys.executable, str(REPO / "tests" / "support" / "stack_sink.py"),
                                  "--port", str(SINK_PORTS[store]), "--out", str(sink)],
                       f"sink-{store}.log")
            am_dir = self.home / f"alertmanager-{store}"
            am_config = write_alertmanager_copy(  # the phone app (ntfy) is the sink
                am_dir, {"ntfy_url": f"http://127.0.0.1:{SINK_PORTS[store]}/phone"})
            self.popen(self.hub, ["prometheus-alertmanager", f"--config.file={am_config}",
                                  f"--storage.path={am_dir / 'data'}",
                                  f"--web.listen-address=127.0.0.1:{AM_PORTS[store]}",
                                  "--cluster.listen-address="], f"alertmanager-{store}.log")
        if "victoriametrics" in self.stores:
            vm_flags: dict[str, str] = {}
            if self.timing.vm_latency_offset:
                vm_flags["-search.latencyOffset"] = self.timing.vm_latency_offset
            self.popen(self.hub, ["victoria-metrics", *compose_command(
                "victoriametrics", paths={"/storage": str(self.home / "vm-data")}, hosts={},
                override=vm_flags)],
                "victoriametrics.log")
            vmalert_flags = {"-httpListenAddr": f"127.0.0.1:{VMALERT_PORT}"}
            if self.timing.central_evaluation:
                vmalert_flags["-evaluationInterval"] = self.timing.central_evaluation
            self.popen(self.hub, ["vmalert", *compose_command(
                "vmalert", paths={"/etc/rules": str(rules)},
                hosts={"victoriametrics:8428": f"127.0.0.1:{VM_PORT}",
                       "alertmanager:9093": f"127.0.0.1:{AM_PORTS['victoriametrics']}"},
                override=vmalert_flags)], "vmalert.log")
        if "prometheus" in self.stores:
            prom_dir = self.home / "central-prometheus"
            prom_dir.mkdir(exist_ok=True)
            config = load_yaml("central/prometheus.yml")
            config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
                f"127.0.0.1:{AM_PORTS['prometheus']}"]
            config["scrape_configs"][0]["static_configs"][0]["targets"] = [
                f"127.0.0.1:{CENTRAL_PROM_PORT}"]
            if self.timing.central_evaluation:
                config["global"]["evaluation_interval"] = self.timing.central_evaluation
            (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
            (prom_dir / "rules").symlink_to(rules)
            self.popen(self.hub, ["prometheus", *compose_command(
                "prometheus", paths={"/etc/prometheus": str(prom_dir),
                                     "/prometheus": str(prom_dir / "data")}, hosts={},
                override={"--web.listen-address": f"0.0.0.0:{CENTRAL_PROM_PORT}"})],
                "central-prometheus.log")

    # --- the probes --------------------------------------------------------------------------

    def probe_prometheus_config(self, probe: ProbeSpec) -> dict[str, Any]:
        t = self.timing
        config = prometheus_config_here(Timing(scrape_interval=t.scrape_interval,
                                               evaluation_interval=t.evaluation_interval))
        config["global"]["external_labels"]["probe"] = probe.name
        endpoints = []
        for store in (s for s in probe.stores if s in self.stores):
            endpoint = docs_remote_write()
            endpoint.pop("basic_auth", None)      # the test's stores ask for none
            endpoint["name"] = store
            endpoint["url"] = f"http://{self.hub_ip[probe.name]}:{STORE_PORTS[store]}{WRITE_PATH}"
            if t.batch_send_deadline:
                endpoint["queue_config"]["batch_send_deadline"] = t.batch_send_deadline
            if probe.send_metadata is not None:
                endpoint["metadata_config"] = {"send": probe.send_metadata}
            endpoints.append(endpoint)
        config["remote_write"] = endpoints
        if "--enable-feature=agent" in probe.prometheus_flags:
            for key in ("rule_files", "alerting"):
                config.pop(key, None)
            config["global"].pop("evaluation_interval", None)
        return config

    def _start_probe(self, probe: ProbeSpec) -> None:
        ns, home = self.ns[probe.name], self.home / f"probe-{probe.name}"
        home.mkdir(exist_ok=True)
        for i, helper in enumerate(probe.helpers):
            self.popen(ns, helper, f"helper-{probe.name}-{i}.log")
        shipped = load_yaml("config/home-monitor.yml")
        targets = probe.latency_targets or [
            {"host": self.hub_ip[probe.name], "name": "uplink", "internet": True}]
        latency = shipped["jobs"]["latency"] | {"targets": targets}
        if self.timing.ping_interval:
            # a shorter round needs fewer pings and a shorter packet timeout to fit in it
            latency |= {"interval": self.timing.ping_interval,
                        "timeout": self.timing.ping_interval, "count": 3, "packet_timeout": "1s"}
        jobs = {"latency": latency, "bandwidth": {"enabled": False},
                "iperf": {"enabled": False}, "aqi": {"enabled": False}} | probe.extra_jobs
        config = {"listen": f"127.0.0.1:{MONITOR_PORT}", "state_dir": str(home / "state"),
                  "log": shipped["log"], "jobs": jobs}
        self._stack.enter_context(daemon(write_config(home / "home-monitor.yml", config),
                                         netns=ns, log_path=self.home / f"daemon-{probe.name}.log"))
        if probe.collector == "vmagent":
            self._start_vmagent(probe, ns, home)
            return
        rules_dir = home / "rules"
        rules_dir.mkdir(exist_ok=True)
        for rule in (REPO / "prometheus" / "rules").glob("*.yml"):
            (rules_dir / rule.name).write_text(rule.read_text(encoding="utf-8"))
        (home / "prometheus.yml").write_text(
            yaml.safe_dump(self.probe_prometheus_config(probe), sort_keys=False))
        data = "--storage.agent.path" if "--enable-feature=agent" in probe.prometheus_flags \
            else "--storage.tsdb.path"
        self.popen(ns, ["prometheus", f"--config.file={home / 'prometheus.yml'}",
                        f"{data}={home / 'data'}",
                        f"--web.listen-address=127.0.0.1:{PROBE_PROM_PORT}",
                        *probe.prometheus_flags], f"prometheus-{probe.name}.log")

    def _start_vmagent(self, probe: ProbeSpec, ns: str, home: Path) -> None:
        """vmagent with the probe's scrape jobs, `probe` label and write_relabel_configs."""
        config = self.probe_prometheus_config(probe)
        (home / "scrape.yml").write_text(yaml.safe_dump({
            "global": {k: v for k, v in config["global"].items() if k.startswith("scrape_")},
            "scrape_configs": config["scrape_configs"]}, sort_keys=False))
        endpoints = config["remote_write"]
        (home / "relabel.yml").write_text(
            yaml.safe_dump(endpoints[0]["write_relabel_configs"], sort_keys=False))
        # what batch_send_deadline is to Prometheus: how often a batch goes out
        flush = endpoints[0]["queue_config"]["batch_send_deadline"]
        self.popen(ns, ["vmagent", f"-promscrape.config={home / 'scrape.yml'}",
                        f"-remoteWrite.label=probe={probe.name}",
                        f"-remoteWrite.relabelConfig={home / 'relabel.yml'}",
                        f"-remoteWrite.flushInterval={flush}",
                        f"-remoteWrite.tmpDataPath={home / 'data'}",
                        f"-httpListenAddr=127.0.0.1:{PROBE_PROM_PORT}",
                        *(f"-remoteWrite.url={e['url']}" for e in endpoints)],
                   f"vmagent-{probe.name}.log")

    def _wait_ready(self) -> None:
        def ready(ns: str, url: str) -> bool:
            return netns_http_get(ns, url, 2)[0] == 200

        checks = [(self.hub, f"http://127.0.0.1:{AM_PORTS[s]}/-/ready") for s in self.stores]
        checks += [(self.hub, f"http://127.0.0.1:{SINK_PORTS[s]}/") for s in self.stores]
        if "victoriametrics" in self.stores:
            checks += [(self.hub, f"http://127.0.0.1:{VM_PORT}/health"),
                       (self.hub, f"http://127.0.0.1:{VMALERT_PORT}/health")]
        if "prometheus" in self.stores:
            checks.append((self.hub, f"http://127.0.0.1:{CENTRAL_PROM_PORT}/-/ready"))
        for probe in self.probes:
            ns = self.ns[probe.name]
            ready_path = "/health" if probe.collector == "vmagent" else "/-/ready"
            checks += [(ns, f"http://127.0.0.1:{MONITOR_PORT}/healthz"),
                       (ns, f"http://127.0.0.1:{PROBE_PROM_PORT}{ready_path}")]
        for ns, url in checks:
            wait_until(lambda ns=ns, url=url: ready(ns, url), 60, interval=0.5,
                       what=f"{url} in {ns}")

    # --- use ---------------------------------------------------------------------------------

    def link(self, probe: str, *, up: bool) -> None:
        """Cut or restore a probe's uplink (both ends of its veth)."""
        hub_dev, probe_dev = self.veth[probe]
        state = "up" if up else "down"
        _run(["ip", "-n", self.hub, "link", "set", hub_dev, state])
        _run(["ip", "-n", self.ns[probe], "link", "set", probe_dev, state])

    def query(self, store: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query against a central store (a range selector gives the raw samples)."""
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        url = (f"http://127.0.0.1:{STORE_PORTS[store]}/api/v1/query?"
               + urllib.parse.urlencode(params))
        return self._api(self.hub, url)

    def probe_query(self, probe: str, expr: str) -> list[dict[str, Any]]:
        url = (f"http://127.0.0.1:{PROBE_PROM_PORT}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        return self._api(self.ns[probe], url)

    @staticmethod
    def _api(ns: str, url: str) -> list[dict[str, Any]]:
        status, body = netns_http_get(ns, url, 10)
        payload = json.loads(body)
        if status != 200 or payload.get("status") != "success":
            raise AssertionError(f"{url}: {payload.get('error', body[:300])}")
        return payload["data"]["result"]

    def metric(self, ns: str, url: str, name: str) -> float:
        """Sum of a metric family's samples on a /metrics page inside `ns`."""
        status, body = netns_http_get(ns, url, 10)
        assert status == 200, url
        total = 0.0
        for line in body.splitlines():
            if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def notifications(self, store: str, alertname: str, status: str | None = None
                      ) -> list[tuple[float, dict[str, Any]]]:
        found = []
        for line in self.sink_files[store].read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            body = record.get("body", {})
            if (body.get("commonLabels", {}).get("alertname") == alertname
                    and (status is None or body.get("status") == status)):
                found.append((record["received"], body))
        return found

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-2500:]}"
                         for path in sorted(self.home.glob("*.log")))
