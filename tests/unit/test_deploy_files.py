"""docker-compose.yml and the Dockerfile: no Docker engine runs here, so check them as files."""

from __future__ import annotations

from pathlib import Path

import yaml

from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_compose_runs_kraft_kafka_and_a_worker_on_it() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    kafka, worker = compose["services"]["kafka"], compose["services"]["worker"]
    assert kafka["image"].startswith("apache/kafka:") and ":latest" not in kafka["image"]
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    env = worker["environment"]
    listener = env["WIREWATCH_BROKER_URL"].split("//")[1]
    assert listener in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    # Every WIREWATCH_ variable the compose file sets is a real setting.
    fields = {name.upper() for name in Settings.__dataclass_fields__}
    assert {k.removeprefix("WIREWATCH_") for k in env} <= fields
    watches = env["WIREWATCH_WATCHES_FILE"].removeprefix("/app/")
    assert (REPO / watches).is_file()


def test_dockerfile_copies_what_the_package_needs() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for path in ("pyproject.toml setup.py", "streams", "agents"):
        assert f"COPY {path}" in dockerfile
        assert all((REPO / p).exists() for p in path.split())
    # the compiled kernel needs a compiler in the build stage, and the runtime gets the wheels
    assert "FROM python:3.11 AS build" in dockerfile and "COPY --from=build /wheels" in dockerfile
    assert "COPY streams/samples" in dockerfile  # the compose file's watches file
