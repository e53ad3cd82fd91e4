"""docker-compose.yml describes the production deployment; Docker itself cannot run here."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.helpers import REPO

COMPOSE = REPO / "docker-compose.yml"
ENV = {"RAC_SECRET_KEY": "x" * 40, "POSTGRES_PASSWORD": "pw", "PATH": "/usr/bin:/bin"}


def _compose_command() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True
    ).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_validates_with_docker_compose_config():
    command = _compose_command()
    if command is None:
        pytest.skip("no docker compose client on this machine (neither plugin nor docker-compose)")
    result = subprocess.run([*command, "-f", str(COMPOSE), "config"], capture_output=True,
                            text=True, env=ENV, cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_compose_describes_the_production_services():
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert set(services) >= {"api", "worker", "postgres", "redis", "vllm"}
    for name in ("api", "postgres", "redis", "vllm"):
        assert "healthcheck" in services[name], name
    vllm = services["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai")
    assert "--enable-prefix-caching" in vllm["command"]
    assert any("RAC_LLM_MODEL" in arg for arg in vllm["command"])  # configurable model
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    env = doc["x-rac-env"]
    assert env["RAC_ENV"] == "production" and env["RAC_QUEUE"] == "celery"
    assert env["RAC_LLM__BACKEND"] == "openai"
    assert "rac-data" in doc["volumes"]
