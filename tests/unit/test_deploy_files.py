"""docker-compose.yml and the Dockerfile: no Docker engine runs here, so check them as files."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from streams.settings import Settings
from tests.conftest import PACKAGES

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
    for path in ("pyproject.toml setup.py", *PACKAGES):
        assert f"COPY {path}" in dockerfile
        assert all((REPO / p).exists() for p in path.split())
    # the compiled kernel needs a compiler in the build stage, and the runtime gets the wheels
    assert "FROM python:3.11 AS build" in dockerfile and "COPY --from=build /wheels" in dockerfile
    assert "COPY streams/samples" in dockerfile  # the compose file's watches file


def _final_stage(dockerfile: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of the last stage's instructions, continuation lines joined."""
    lines = [ln for ln in dockerfile.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines)).splitlines()
    instructions = [(kw.upper(), args.strip()) for kw, _, args in
                    (ln.strip().partition(" ") for ln in joined if ln.strip())]
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from + 1:]


def test_the_runtime_image_runs_as_a_user_that_is_not_root() -> None:
    final = _final_stage((REPO / "Dockerfile").read_text())
    users = [args for kw, args in final if kw == "USER"]
    assert users, "the runtime stage sets no USER: the worker would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} is root"
    # The user exists in the image (so it has a home, where the worker's cache goes).
    runs = " ".join(args for kw, args in final if kw == "RUN")
    created = re.findall(r"useradd\b[^&;|]*", runs)
    assert any(re.search(rf"(\s|=){re.escape(user)}(\s|$)", c) for c in created), (
        f"USER {user} is not created by a useradd in the runtime stage: {created}")
    # ENV lines name only real settings (one ENV may set several, as KEY=VALUE pairs).
    env = re.findall(r"(WIREWATCH_\w+)=", " ".join(args for kw, args in final if kw == "ENV"))
    fields = {name.upper() for name in Settings.__dataclass_fields__}
    assert env and {k.removeprefix("WIREWATCH_") for k in env} <= fields
