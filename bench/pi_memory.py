"""What the small-board core costs: RSS and disk writes of the daemon, Prometheus, Alertmanager.

The three run natively on loopback for --seconds (default 600; issue 27 asks for an hour, run
`--seconds 3600` for that): the daemon with the shipped config's latency job (three targets, a
request a second each, here 127.0.0.1, 127.0.0.2 and ::1; bandwidth off: it would need the
internet), Debian's Prometheus with the repo's prometheus.yml and rules (the monitor and
Alertmanager targets rewritten to loopback; Loki, Alloy and cAdvisor stay unresolvable, as in
the small profile) and Debian's Alertmanager on the config the one-shot renders with no secret.
Every 10 s each process's VmRSS and /proc/PID/io write_bytes are sampled.
The figures size `mem_limit` in docker-compose.yml and the SD-card advice in docs/stack.md.
Run: .venv/bin/python -m bench.pi_memory [--seconds 600]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.procs import REPO, free_port, http_get, stop_process, wait_until


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def written_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes")


def daemon_config(home: Path, port: int) -> Path:
    shipped = yaml.safe_load((REPO / "config/home-monitor.yml").read_text())
    latency = shipped["jobs"]["latency"]
    names = [target["name"] for target in latency["targets"]]
    latency["targets"] = [{"host": host, "name": name}
                          for host, name in zip(["127.0.0.1", "127.0.0.2", "::1"], names,
                                                strict=True)]
    shipped["jobs"]["bandwidth"]["enabled"] = False
    shipped["listen"] = f"127.0.0.1:{port}"
    shipped["state_dir"] = str(home / "state")
    path = home / "home-monitor.yml"
    path.write_text(yaml.safe_dump(shipped, sort_keys=False))
    return path


def prometheus_config(home: Path, monitor: str, alertmanager: str) -> Path:
    target = home / "prometheus"
    shutil.copytree(REPO / "prometheus", target)
    text = (target / "prometheus.yml").read_text()
    text = text.replace("monitor:10132", monitor).replace("alertmanager:9093", alertmanager)
    (target / "prometheus.yml").write_text(text)
    return target / "prometheus.yml"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pi-memory-") as tmp:
        home = Path(tmp)
        ports = {name: free_port() for name in ("monitor", "prometheus", "alertmanager",
                                                "cluster")}
        rendered = home / "alertmanager.yml"
        (home / "secrets").mkdir()
        subprocess.run([sys.executable, "-m", "monitor", "alertmanager-config",
                        f"--template={REPO / 'alertmanager/alertmanager.yml'}",
                        f"--secrets={home / 'secrets'}", f"--out={rendered}"], check=True,
                       capture_output=True, timeout=60)
        commands = {
            "monitor": [sys.executable, "-m", "monitor", "run", "--config",
                        str(daemon_config(home, ports["monitor"]))],
            "prometheus": [
                "prometheus", "--config.file=" + str(prometheus_config(
                    home, f"127.0.0.1:{ports['monitor']}",
                    f"127.0.0.1:{ports['alertmanager']}")),
                f"--storage.tsdb.path={home / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                "--storage.tsdb.retention.time=90d"],
            "alertmanager": [
                "prometheus-alertmanager", f"--config.file={rendered}",
                f"--storage.path={home / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                f"--cluster.listen-address=127.0.0.1:{ports['cluster']}"],
        }
        procs = {name: subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                 for name, cmd in commands.items()}
        try:
            for name in ("monitor", "prometheus", "alertmanager"):
                path = "/healthz" if name == "monitor" else "/-/ready"
                url = f"http://127.0.0.1:{ports[name]}{path}"
                wait_until(lambda u=url: http_get(u, 2.0)[0] == 200, 60, what=f"{name} up")
            start_writes = {name: written_bytes(proc.pid) for name, proc in procs.items()}
            samples: dict[str, list[float]] = {name: [] for name in procs}
            started = time.monotonic()
            while time.monotonic() - started < args.seconds:
                for name, proc in procs.items():
                    assert proc.poll() is None, f"{name} exited"
                    samples[name].append(rss_mib(proc.pid))
                time.sleep(10)
            seconds = time.monotonic() - started
            results: dict[str, Any] = {"seconds": round(seconds)}
            for name, proc in procs.items():
                written = written_bytes(proc.pid) - start_writes[name]
                results[name] = {"rss_mib_last": round(samples[name][-1], 1),
                                 "rss_mib_peak": round(max(samples[name]), 1),
                                 "written_kib_per_hour": round(written / 1024 * 3600 / seconds)}
            results["total_rss_mib_peak"] = round(
                sum(results[name]["rss_mib_peak"] for name in procs), 1)
        finally:
            for proc in procs.values():
                stop_process(proc)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
