"""deploy/ and the developer entry points: present, complete and consistent with the code.

No YAML parser is a dependency and there is no Docker engine here, so these are plain-text checks:
every role is deployed, every TASKGATE_* variable the manifests set is a real setting, and the
durability settings of redis.conf are the ones the README promises."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from taskgate.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENV_NAME = re.compile(r"\b(TASKGATE_[A-Z0-9_]+)\b")


def read(path: Path) -> str:
    text = path.read_text()
    assert text.strip(), f"{path} is empty"
    return text


def test_compose_runs_every_role_against_redis_with_aof() -> None:
    text = read(DEPLOY / "docker-compose.yml")
    services = re.findall(r"^  ([a-z][a-z0-9-]*):\s*$", text.split("\nservices:\n", 1)[1], re.MULTILINE)
    assert {"redis", "api", "scheduler", "worker", "upstream-sim"} <= set(services)
    for role in ("api", "scheduler", "worker", "upstream-sim"):
        assert f'command: ["{role}"]' in text
    assert "./redis.conf:/usr/local/etc/redis/redis.conf" in text
    assert "TASKGATE_REDIS_URL: redis://redis:6379/0" in text


def test_redis_conf_is_durable_and_never_evicts() -> None:
    settings = [
        line.split(None, 1)
        for line in read(DEPLOY / "redis.conf").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    lines = {name: value.strip() for name, value in settings}
    assert lines["appendonly"] == "yes"
    assert lines["appendfsync"] == "everysec"
    assert lines["maxmemory-policy"] == "noeviction"


def test_dockerfile_installs_the_package_and_runs_the_cli() -> None:
    text = read(DEPLOY / "Dockerfile")
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install ." in text and 'ENTRYPOINT ["taskgate"]' in text
    assert re.search(r"^USER \d+$", text, re.MULTILINE)  # numeric, so runAsNonRoot can verify it


def test_k8s_has_a_deployment_per_role_config_secret_service_and_scaler() -> None:
    docs = [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in read(path).split("\n---\n")]
    kinds = [re.search(r"^kind: (\w+)$", doc, re.MULTILINE)[1] for doc in docs]  # type: ignore[index]
    assert sorted(kinds) == [
        "ConfigMap",
        "Deployment",
        "Deployment",
        "Deployment",
        "Kustomization",
        "PodDisruptionBudget",
        "PodDisruptionBudget",
        "PodDisruptionBudget",
        "ScaledObject",
        "Secret",
        "Service",
    ]
    roles = sorted(re.findall(r'args: \["(\w+)"\]', "\n".join(docs)))
    assert roles == ["api", "scheduler", "worker"]
    assert all("namespace:" not in doc.split("spec:", 1)[0] for doc in docs)  # namespace-less
    scaler = next(doc for doc in docs if "kind: ScaledObject" in doc)
    assert "name: taskgate-worker" in scaler and "taskgate_running_tasks" in scaler


@pytest.mark.parametrize("path", ["docker-compose.yml", "k8s/configmap.yaml", "k8s/secret.yaml"])
def test_every_taskgate_variable_in_the_manifests_is_a_setting(path: str) -> None:
    names = set(ENV_NAME.findall(read(DEPLOY / path)))
    assert names
    known = {"TASKGATE_" + field.upper() for field in Settings.model_fields}
    assert names <= known, names - known


def test_makefile_has_the_documented_targets() -> None:
    text = read(ROOT / "Makefile")
    for target in ("demo", "test", "lint", "bench", "clean"):
        assert re.search(rf"^{target}:", text, re.MULTILINE), target
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "test"], capture_output=True, text=True, check=True)
    assert ".venv/bin/pytest -q" in dry.stdout
    assert "make test" in read(ROOT / ".ci" / "run")
