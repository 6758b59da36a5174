"""The Compose Specification JSON schema, and Compose's merge of an override file.

The schema is not vendored: it is read from the ``docker-compose`` 1.29.2 wheel on PyPI
(``compose/config/compose_spec.json``, the compose-spec project's schema as Docker shipped
it; Apache-2.0), fetched once with ``pip download`` into ``~/.cache/wirewatch`` like the
Kafka jars, and checked against a pinned SHA-256 so a changed upload cannot slip in.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from streams.settings import load_settings

__all__ = ["compose_schema", "merge_compose"]

WHEEL = "docker_compose-1.29.2-py2.py3-none-any.whl"
WHEEL_SHA256 = "8d5589373b35c8d3b1c8c1182c6e4a4ff14bffa3dd0b605fcd08f73c94cef809"
MEMBER = "compose/config/compose_spec.json"


def compose_schema(cache_dir: Path | None = None) -> dict[str, Any]:
    cache = (cache_dir or Path(load_settings().cache_dir)) / "compose-spec"
    schema_path = cache / "compose_spec.json"
    if not schema_path.is_file():
        wheel = cache / WHEEL
        if not wheel.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "--dest", str(cache), "docker-compose==1.29.2"],
                capture_output=True, text=True, timeout=300, check=False)
            if result.returncode != 0 or not wheel.is_file():
                raise RuntimeError(f"pip download docker-compose==1.29.2 failed:\n"
                                   f"{result.stdout}\n{result.stderr}")
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            wheel.unlink()
            raise RuntimeError(f"{WHEEL} has sha256 {digest}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
        tmp = schema_path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(schema_path)
    schema: dict[str, Any] = json.loads(schema_path.read_text(encoding="utf-8"))
    return schema


# Compose's merge rules (compose-spec, "Merge and override"): mappings merge key by key;
# these sequences are unions; `environment`/`labels` merge as mappings whatever their form;
# `volumes` merge by container path; anything else in the override replaces the base.
_UNION = {"ports", "expose", "external_links", "dns", "dns_search", "tmpfs", "cap_add",
          "cap_drop", "security_opt", "env_file", "extra_hosts"}
_AS_MAPPING = {"environment", "labels", "depends_on"}


def _mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value or []:
        key, _, val = str(item).partition("=")
        out[key] = val if "=" in str(item) else None
    return out


def _volume_target(volume: Any) -> str:
    if isinstance(volume, dict):
        return str(volume["target"])
    parts = str(volume).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _merge_service(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key in _AS_MAPPING:
            if key == "depends_on":
                mapping = {k: {"condition": "service_started"} for k in _mapping(base.get(key))} \
                    if isinstance(base.get(key), list) else dict(base.get(key) or {})
                extra = value if isinstance(value, dict) else \
                    {k: {"condition": "service_started"} for k in value}
                merged[key] = {**mapping, **copy.deepcopy(extra)}
            else:
                merged[key] = {**_mapping(base.get(key)), **_mapping(value)}
        elif key in _UNION:
            merged[key] = list(base.get(key, [])) + [v for v in value if v not in base.get(key, [])]
        elif key == "volumes":
            by_target = {_volume_target(v): v for v in base.get(key, [])}
            by_target.update({_volume_target(v): v for v in value})
            merged[key] = list(by_target.values())
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **copy.deepcopy(value)}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_compose(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``docker compose -f base -f override config`` for what our files use."""
    merged = copy.deepcopy(base)
    for section, entries in override.items():
        if section == "services":
            services = merged.setdefault("services", {})
            for name, service in entries.items():
                services[name] = _merge_service(services.get(name, {}), service)
        elif isinstance(entries, dict):
            merged.setdefault(section, {})
            for name, value in entries.items():
                merged[section][name] = {**(merged[section].get(name) or {}), **(value or {})}
        else:
            merged[section] = copy.deepcopy(entries)
    return merged
