"""docker-compose.yml and the docker-compose.cluster.yml override, checked as files (no
Docker engine runs here): valid against the Compose Specification schema, alone and merged;
every local path they mount exists; no two services publish the same host port; the stack
is wired together (Prometheus scrapes the workers, Grafana reads Prometheus, the cluster
replicates three ways)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from streams.settings import Settings
from tests.ops.compose_spec import compose_schema, merge_compose
from tests.ops.prom import DASHBOARD_PROVIDERS, DATASOURCES, PROMETHEUS_CONFIG, REPO, load_yaml

BASE = REPO / "docker-compose.yml"
CLUSTER = REPO / "docker-compose.cluster.yml"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = compose_schema()
    # It declares draft 2019-09, under a URI spelling jsonschema does not recognise.
    assert "2019-09" in schema["$schema"]
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _merged() -> dict[str, Any]:
    return merge_compose(_load(BASE), _load(CLUSTER))


def _errors(validator: jsonschema.protocols.Validator, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _host_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(protocol, host port) of every published port, ranges expanded."""
    out: list[tuple[str, int]] = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published, proto = port.get("published"), port.get("protocol", "tcp")
            if published is None:
                continue
            spec = str(published)
        else:
            text, _, proto = str(port).partition("/")
            proto = proto or "tcp"
            parts = text.split(":")
            if len(parts) < 2:
                continue  # container port only: Docker picks a free host port
            spec = parts[-2]
        low, _, high = spec.partition("-")
        out += [(proto, p) for p in range(int(low), int(high or low) + 1)]
    return out


def _replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", service.get("scale", 1)))


def test_schema_is_the_compose_specification(validator: jsonschema.protocols.Validator) -> None:
    assert validator.schema["title"] == "Compose Specification"
    assert _errors(validator, {"services": {"x": {"image": "a", "bogus_key": 1}}})


@pytest.mark.parametrize("name", ["base", "cluster override", "base + cluster override"])
def test_compose_files_are_valid(validator: jsonschema.protocols.Validator, name: str) -> None:
    document = {"base": lambda: _load(BASE), "cluster override": lambda: _load(CLUSTER),
                "base + cluster override": _merged}[name]()
    assert _errors(validator, document) == []


@pytest.mark.parametrize("name", ["base", "base + cluster override"])
def test_published_host_ports_do_not_collide(name: str) -> None:
    document = _load(BASE) if name == "base" else _merged()
    seen: dict[tuple[str, int], str] = {}
    for service_name, service in document["services"].items():
        ports = _host_ports(service)
        # Each replica of a service needs its own host port: a range at least as wide.
        fixed = [p for p in service.get("ports", []) if ":" in str(p)]
        assert len(ports) >= _replicas(service) * len(fixed), service_name
        for port in ports:
            assert port not in seen, f"{service_name} and {seen[port]} both publish {port}"
            seen[port] = service_name


@pytest.mark.parametrize("path", [BASE, CLUSTER])
def test_every_local_path_exists(path: Path) -> None:
    document = _load(path)
    for name, service in document["services"].items():
        build = service.get("build")
        if build:
            context = REPO / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile",
                                                                                "Dockerfile")
            assert (context / dockerfile).is_file(), name
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in document.get("volumes", {}), f"{name}: undeclared volume {source}"
        for env_file in service.get("env_file", []):
            assert (REPO / env_file).is_file(), name
        for dep in service.get("depends_on", {}):
            assert dep in document["services"] or dep in _load(BASE)["services"], (name, dep)


def test_images_are_pinned() -> None:
    for name, service in _merged()["services"].items():
        image = service.get("image")
        if "build" in service:
            continue
        assert image and ":" in image and not image.endswith(":latest"), name
    assert _merged()["services"]["kafka"]["image"] == "apache/kafka:3.9.1"


def test_two_workers_share_one_consumer_group_and_are_scraped() -> None:
    services = _load(BASE)["services"]
    workers = {n: s for n, s in services.items() if n.startswith("worker")}
    assert sum(_replicas(s) for s in workers.values()) >= 2
    app_ids = {_env(s).get("WIREWATCH_APP_ID", Settings().app_id) for s in workers.values()}
    assert len(app_ids) == 1, "workers must share WIREWATCH_APP_ID to share the partitions"
    fields = {name.upper() for name in Settings.__dataclass_fields__}
    for name, worker in workers.items():
        assert {k.removeprefix("WIREWATCH_") for k in _env(worker)} <= fields, name

    config = load_yaml(PROMETHEUS_CONFIG)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "wirewatch")
    targets = {(name, int(sd["port"])) for sd in job.get("dns_sd_configs", [])
               for name in sd["names"]}
    targets |= {(host, int(port)) for sc in job.get("static_configs", [])
                for host, port in (t.rsplit(":", 1) for t in sc["targets"])}
    expected = {(name, int(_env(s)["WIREWATCH_WEB_PORT"])) for name, s in workers.items()}
    assert targets == expected
    assert all(_env(s)["WIREWATCH_WEB_HOST"] == "0.0.0.0" for s in workers.values())


def test_prometheus_and_grafana_mount_ops_and_point_at_each_other() -> None:
    services = _load(BASE)["services"]
    prom, grafana = services["prometheus"], services["grafana"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in prom["volumes"]}
    config_flag = next(a for a in prom["command"] if a.startswith("--config.file="))
    config_in_container = Path(config_flag.split("=", 1)[1])
    assert mounts[str(config_in_container.parent)] == "./ops/prometheus"
    assert (REPO / "ops/prometheus" / config_in_container.name).is_file()
    listen = next(a for a in prom["command"] if a.startswith("--web.listen-address="))
    prom_port = int(listen.rsplit(":", 1)[1])

    g_mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in grafana["volumes"]}
    provisioning = Path(g_mounts["/etc/grafana/provisioning"])
    assert REPO / provisioning == DATASOURCES.parents[1]
    dashboards_path = load_yaml(DASHBOARD_PROVIDERS)["providers"][0]["options"]["path"]
    assert (REPO / g_mounts[dashboards_path]).is_dir()
    assert any((REPO / g_mounts[dashboards_path]).glob("*.json"))
    url = load_yaml(DATASOURCES)["datasources"][0]["url"]
    assert re.fullmatch(rf"http://prometheus:{prom_port}/?", url), url


def test_cluster_override_runs_three_kraft_brokers_replicating_three_ways() -> None:
    services = _merged()["services"]
    brokers = {n: _env(s) for n, s in services.items() if s.get("image", "").startswith(
        "apache/kafka:")}
    assert len(brokers) == 3
    assert {env["KAFKA_NODE_ID"] for env in brokers.values()} == {"1", "2", "3"}
    assert len({env["CLUSTER_ID"] for env in brokers.values()}) == 1
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in brokers.values()}
    assert len(voters) == 1
    voter_hosts = {v.split("@")[1].split(":")[0] for v in voters.pop().split(",")}
    assert voter_hosts == set(brokers)
    for name, env in brokers.items():
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", name
        for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                    "KAFKA_DEFAULT_REPLICATION_FACTOR"):
            assert env[key] == "3", (name, key)
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2", name
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2", name
        assert f"PLAINTEXT://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"], name
        assert name in " ".join(services[name]["healthcheck"]["test"]), name

    worker = services["worker"]
    env = _env(worker)
    assert env["WIREWATCH_REPLICATION_FACTOR"] == "3"
    bootstrap = {part.split("://")[-1] for part in env["WIREWATCH_BROKER_URL"].split(";")}
    assert bootstrap == {f"{name}:19092" for name in brokers}
    assert {n for n, d in worker["depends_on"].items()
            if d["condition"] == "service_healthy"} == set(brokers)


def test_merge_follows_compose_rules() -> None:
    base = {"services": {"a": {"image": "x:1", "ports": ["1:1"], "environment": ["A=1", "B=2"],
                               "command": ["one"], "depends_on": ["k"]}}}
    override = {"services": {"a": {"ports": ["2:2"], "environment": {"B": "3"},
                                   "command": ["two"], "depends_on": {"m": {
                                       "condition": "service_healthy"}}}}}
    merged = merge_compose(base, override)["services"]["a"]
    assert merged["ports"] == ["1:1", "2:2"]
    assert merged["environment"] == {"A": "1", "B": "3"}
    assert merged["command"] == ["two"]
    assert merged["depends_on"] == {"k": {"condition": "service_started"},
                                    "m": {"condition": "service_healthy"}}
