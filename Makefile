# `make test` is the one command: it installs what the tests need, lints, and runs pytest.
VENV ?= .venv
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := prometheus prometheus-alertmanager iperf3 iproute2 procps util-linux
# commands whose absence means a Debian package is missing
NEEDED_COMMANDS := prometheus promtool prometheus-alertmanager amtool iperf3 ip tc sysctl setpriv
# the status page test drives Debian's chromium with Playwright (no browser download)
DEBIAN_PACKAGES += chromium
NEEDED_COMMANDS += chromium
# container tests: a private dockerd (Debian's engine, 20.10) and a debootstrapped python base
DEBIAN_PACKAGES += docker.io debootstrap git
NEEDED_COMMANDS += dockerd containerd runc debootstrap git
# arm images under emulation (tests/test_container_arm.py): qemu registered with binfmt_misc
DEBIAN_PACKAGES += qemu-user-static
NEEDED_COMMANDS += qemu-aarch64-static qemu-arm-static
# multi-site (docs/multi-site.md): the central store and its rule evaluator
DEBIAN_PACKAGES += victoria-metrics
NEEDED_COMMANDS += victoria-metrics vmalert
# Home Assistant MQTT discovery (docs/home-assistant.md): a real broker and its password tool
DEBIAN_PACKAGES += mosquitto mosquitto-clients
NEEDED_COMMANDS += mosquitto mosquitto_passwd mosquitto_sub
# where it broke (tests/jobs/latency/test_where_netns.py): the "internet"'s DNS server, and a
# hop that sends no Time Exceeded
DEBIAN_PACKAGES += dnsmasq-base iptables
NEEDED_COMMANDS += dnsmasq iptables

.PHONY: test lint system-deps venv bench clean

test: system-deps venv lint
	@$(PY) -m pytest -ra $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a broken suite"; fi; \
	exit $$rc

lint: venv
	$(VENV)/bin/ruff check monitor tests bench grafana
	$(VENV)/bin/mypy

# policy-rc.d keeps apt from starting the system Docker (it would turn on ip_forward and add
# iptables rules on the host); the tests start their own private dockerd.
system-deps:
	@missing=""; for c in $(NEEDED_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "missing:$$missing -> installing Debian packages"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		policy=""; if [ ! -e /usr/sbin/policy-rc.d ]; then policy=/usr/sbin/policy-rc.d; \
			printf '#!/bin/sh\nexit 101\n' | $$SUDO tee $$policy >/dev/null; $$SUDO chmod +x $$policy; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; \
		rc=$$?; [ -z "$$policy" ] || $$SUDO rm -f $$policy; exit $$rc; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# every bench/*.py module that runs as a program (tests/test_bench_modules.py checks the list);
# each runs even when one before it failed, and the target fails at the end naming them.
# pi_memory runs 2 minutes here: the hour figures in docs/stack.md come from a manual
# `.venv/bin/python -m bench.pi_memory --seconds 3600`.
BENCH_MODULES = daemon latency bandwidth aqi stack web mqtt ledger container multisite
BENCH_PI_MEMORY_SECONDS = 120

bench: system-deps venv
	failed=""; \
	for b in $(BENCH_MODULES); do $(PY) -m bench.$$b || failed="$$failed $$b"; done; \
	$(PY) -m bench.pi_memory --seconds $(BENCH_PI_MEMORY_SECONDS) || failed="$$failed pi_memory"; \
	[ -z "$$failed" ] || { echo "bench failed:$$failed"; exit 1; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# tests/ledger/test_disk_netns.py: a small tmpfs in a private mount namespace
DEBIAN_PACKAGES += mount
NEEDED_COMMANDS += unshare mount

# bench/latency.py runs smokeping_prober next to the daemon
DEBIAN_PACKAGES += prometheus-smokeping-prober
NEEDED_COMMANDS += prometheus-smokeping-prober
