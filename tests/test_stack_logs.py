"""loki/ and alloy/ — validated STATICALLY ONLY: there is no Loki or Alloy binary here.

YAML parse and key sanity for Loki; block structure and references for Alloy's config.
docs/stack.md says so and gives the commands that validate them with the real images.
"""

from __future__ import annotations

import re

from tests.support.stack_configs import REPO, load_yaml

ALLOY = REPO / "alloy" / "config.alloy"


def test_loki_is_single_binary_tsdb_v13_on_the_filesystem_with_retention() -> None:
    config = load_yaml("loki/loki.yml")
    assert config["auth_enabled"] is False
    assert config["common"]["ring"]["kvstore"]["store"] == "inmemory"
    assert config["common"]["replication_factor"] == 1
    assert "filesystem" in config["common"]["storage"]
    latest = config["schema_config"]["configs"][-1]
    assert (latest["store"], latest["object_store"], latest["schema"]) == \
        ("tsdb", "filesystem", "v13")
    assert latest["index"]["period"] == "24h"  # the compactor works on 24 h tables
    compactor = config["compactor"]
    assert compactor["retention_enabled"] is True
    assert compactor["delete_request_store"] == "filesystem"  # Loki 3 refuses retention without
    assert config["limits_config"]["retention_period"]
    assert config["server"]["http_listen_port"] == 3100


def test_loki_env_placeholder_is_expanded_by_its_flag() -> None:
    text = (REPO / "loki" / "loki.yml").read_text(encoding="utf-8")
    loki = load_yaml("docker-compose.yml")["services"]["loki"]
    if "${" in text:
        assert "-config.expand-env=true" in loki["command"]
        for name in re.findall(r"\$\{([A-Z_]+)", text):
            assert name in loki["environment"]


def alloy_blocks(text: str) -> dict[str, str]:
    """Top-level `component.kind "label" {` blocks -> their text (brace-matched)."""
    blocks = {}
    for match in re.finditer(r'^([a-z_.]+)\s+"([a-z_]+)"\s*\{', text, re.MULTILINE):
        depth, index = 0, match.end() - 1
        while True:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
            if depth == 0:
                break
        blocks[f"{match.group(1)}.{match.group(2)}"] = text[match.start():index]
    return blocks


def test_alloy_pipeline_docker_discovery_to_loki() -> None:
    text = ALLOY.read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    assert code.count("{") == code.count("}")
    blocks = alloy_blocks(code)
    assert set(blocks) == {"discovery.docker.containers", "discovery.relabel.containers",
                           "loki.source.docker.containers", "loki.write.local"}
    source = blocks["loki.source.docker.containers"]
    assert "targets          = discovery.docker.containers.targets" in source
    assert "relabel_rules    = discovery.relabel.containers.rules" in source
    assert "forward_to       = [loki.write.local.receiver]" in source
    assert 'url = "http://loki:3100/loki/api/v1/push"' in blocks["loki.write.local"]
    # every reference points at a declared component
    for reference in re.findall(r"=\s*\[?((?:discovery|loki)\.[a-z_.]+)", code):
        component = reference.rsplit(".", 1)[0]
        assert component in blocks, f"{reference} refers to an undeclared component"
    assert "compose_service" in blocks["discovery.relabel.containers"]
    assert "promtail" not in code.lower()


def test_alloy_reads_the_docker_socket_read_only() -> None:
    alloy = load_yaml("docker-compose.yml")["services"]["alloy"]
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in alloy["volumes"]
    assert "./alloy/config.alloy:/etc/alloy/config.alloy:ro" in alloy["volumes"]
    assert alloy["command"][-1] == "/etc/alloy/config.alloy"


def test_cadvisor_runs_with_pi_friendly_flags() -> None:
    command = load_yaml("docker-compose.yml")["services"]["cadvisor"]["command"]
    flags = dict(arg.lstrip("-").split("=", 1) for arg in command)
    assert flags["docker_only"] == "true"
    assert int(flags["housekeeping_interval"].rstrip("s")) >= 15
    disabled = set(flags["disable_metrics"].split(","))
    assert {"percpu", "sched", "tcp", "udp", "process"} <= disabled
    # what the Containers dashboard plots must stay on
    assert not {"cpu", "memory", "network", "diskIO", "oom_event"} & disabled
