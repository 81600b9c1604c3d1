# `make test` is the one command: it installs what the tests need, lints, and runs pytest.
VENV ?= .venv
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := prometheus prometheus-alertmanager iperf3 iproute2 procps util-linux
# commands whose absence means a Debian package is missing
NEEDED_COMMANDS := prometheus promtool prometheus-alertmanager amtool iperf3 ip tc sysctl setpriv

.PHONY: test lint system-deps venv bench clean

test: system-deps venv lint
	@$(PY) -m pytest -ra $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a broken suite"; fi; \
	exit $$rc

lint: venv
	$(VENV)/bin/ruff check monitor tests bench grafana

system-deps:
	@missing=""; for c in $(NEEDED_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "missing:$$missing -> installing Debian packages"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

bench: system-deps venv
	$(PY) -m bench.daemon
	for b in latency bandwidth aqi stack; do [ ! -f bench/$$b.py ] || $(PY) -m bench.$$b; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# bench/latency.py runs smokeping_prober next to the daemon
DEBIAN_PACKAGES += prometheus-smokeping-prober
NEEDED_COMMANDS += prometheus-smokeping-prober
