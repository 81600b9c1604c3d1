"""Container figures: build time, start time, and the layers the project adds to the base image.

Runs on a private Debian dockerd (tests/support/docker_engine.py) with the Debian-made stand-in
for the python base image, so the added-layer size is the project's own share (target <= 35 MB);
the official python image would give the same layers on a different base.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from tests.support import docker_engine as de
from tests.support.compose_service import monitor_config, run_args
from tests.support.procs import http_get, wait_until

TAG = "home-monitor:bench"
NETWORK = "hm-bench"


def main() -> None:
    with de.running_engine() as engine:
        started = time.monotonic()
        base = de.import_python_standin(engine)
        base_seconds = time.monotonic() - started
        build_seconds = engine.build(TAG, de.REPO, buildkit=False,
                                     build_args={"PYTHON_IMAGE": base})
        added = de.added_layers(engine, TAG, base)

        engine.docker("network", "create", NETWORK)
        gateway = engine.inspect(NETWORK)["IPAM"]["Config"][0]["Gateway"]
        spec = json.loads(engine.compose(de.REPO, "config", "--format", "json",
                                         files=("docker-compose.yml",)).stdout)
        with tempfile.TemporaryDirectory(prefix="hm-bench-") as scratch:
            config = Path(scratch) / "home-monitor.yml"
            config.write_text(monitor_config(gateway))
            Path(scratch).chmod(0o755)
            config.chmod(0o644)
            args = run_args(spec["services"]["monitor"], config, "hm-bench-state")
            started = time.monotonic()
            engine.docker("run", "-d", "--name", "hm-bench", "--network", NETWORK,
                          "--dns", "127.0.0.1", *args, TAG)
            address = engine.inspect("hm-bench")["NetworkSettings"]["Networks"][NETWORK][
                "IPAddress"]
            wait_until(lambda: http_get(f"http://{address}:10132/healthz", 2.0)[0] == 200,
                       90, interval=0.1, what="/healthz")
            start_seconds = time.monotonic() - started
            started = time.monotonic()
            engine.docker("stop", "--time", "30", "hm-bench")
            stop_seconds = time.monotonic() - started

    total = sum(size for _, size in added)
    print(f"container: python stand-in base ready in {base_seconds:.1f} s "
          "(debootstrap, or its cached tarball, + docker import)")
    print(f"container: build (classic builder, network-bound) {build_seconds:.1f} s")
    print(f"container: docker run to /healthz 200 {start_seconds:.2f} s; "
          f"docker stop {stop_seconds:.2f} s")
    for step, size in added:
        if size:
            print(f"container:   {size / 1e6:6.1f} MB  {step[:90]}")
    print(f"container: layers added on top of the base {total / 1e6:.1f} MB (target <= 35 MB)")


if __name__ == "__main__":
    main()
