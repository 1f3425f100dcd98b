"""deploy/docker-compose.sentinel.yml and its sentinel.conf: a master, a replica and three
Sentinels; every taskgate role connects through the Sentinels with the durability option on, and
every TASKGATE_* variable is a real setting. Plain-text checks, as in tests/ops/test_deploy.py."""

from __future__ import annotations

import re
from pathlib import Path

from taskgate.settings import Settings
from taskgate.store.connection import redis_target

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENV_LINE = re.compile(r"^\s+(TASKGATE_[A-Z0-9_]+): *(.+?)\s*$", re.MULTILINE)


def _services(text: str) -> list[str]:
    body = text.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    return re.findall(r"^  ([a-z][a-z0-9-]*):\s*$", body, re.MULTILINE)


def test_compose_has_master_replica_three_sentinels_and_every_role():
    text = (DEPLOY / "docker-compose.sentinel.yml").read_text()
    assert set(_services(text)) == {
        "redis-master",
        "redis-replica",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
        "api",
        "scheduler",
        "worker",
        "upstream-sim",
    }
    for role in ("api", "scheduler", "worker", "upstream-sim"):
        assert f'command: ["{role}"]' in text
    assert '"--replicaof", "redis-master", "6379"' in text
    assert text.count("./sentinel/sentinel.conf:/etc/taskgate/sentinel.conf:ro") == 3


def test_compose_settings_are_real_and_point_at_the_monitored_master():
    text = (DEPLOY / "docker-compose.sentinel.yml").read_text()
    env = {k: v.strip('"') for k, v in ENV_LINE.findall(text)}
    unknown = {k for k in env if k.removeprefix("TASKGATE_").lower() not in Settings.model_fields}
    assert not unknown, unknown
    settings = Settings(
        redis_url=env["TASKGATE_REDIS_URL"],
        redis_min_replicas_ack=int(env["TASKGATE_REDIS_MIN_REPLICAS_ACK"]),
    )
    target = redis_target(settings)
    assert target.sentinels == tuple((f"sentinel-{i}", 26379) for i in (1, 2, 3))
    assert settings.redis_min_replicas_ack == 1
    conf = (DEPLOY / "sentinel" / "sentinel.conf").read_text()
    monitor = re.search(r"^sentinel monitor (\S+) redis-master 6379 (\d)$", conf, re.MULTILINE)
    assert monitor is not None and monitor[1] == target.service and int(monitor[2]) == 2  # quorum of 3


def test_kubernetes_notes_use_real_settings():
    text = (DEPLOY / "sentinel" / "KUBERNETES.md").read_text()
    names = set(re.findall(r"\b(TASKGATE_[A-Z0-9_]+)\b", text))
    assert {"TASKGATE_REDIS_SENTINELS", "TASKGATE_REDIS_MIN_REPLICAS_ACK"} <= names
    assert {n for n in names if n.removeprefix("TASKGATE_").lower() not in Settings.model_fields} == set()
    url = re.search(r"TASKGATE_REDIS_URL: (redis\+sentinel://\S+)", text)
    assert url is not None and redis_target(Settings(redis_url=url[1])).service == "tgmaster"
