"""Redis connection settings: plain, TLS, ACL user and the two Sentinel forms; bad forms refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from taskgate.settings import Settings
from taskgate.store.connection import arq_redis_settings, redis_target


def test_sentinel_url_form():
    s = Settings(redis_url="redis+sentinel://app:s3cret@10.0.0.1:26379,10.0.0.2,sentinel-3:26380/mymaster/2")
    target = redis_target(s)
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("sentinel-3", 26380))
    assert (target.service, target.db, target.username, target.password, target.ssl) == (
        "mymaster",
        2,
        "app",
        "s3cret",
        False,
    )
    arq = arq_redis_settings(s)
    assert arq.sentinel and arq.sentinel_master == "mymaster" and arq.host == list(target.sentinels)
    assert (arq.database, arq.username, arq.password) == (2, "app", "s3cret")


def test_explicit_sentinel_variables_override_the_url(monkeypatch):
    monkeypatch.setenv("TASKGATE_REDIS_URL", "rediss://:pw@ignored-host:6380/1")
    monkeypatch.setenv("TASKGATE_REDIS_SENTINELS", "s1:26379, s2:26379")
    monkeypatch.setenv("TASKGATE_REDIS_SENTINEL_SERVICE", "tg")
    target = redis_target(Settings())
    assert target.sentinels == (("s1", 26379), ("s2", 26379)) and target.service == "tg"
    assert (target.db, target.password, target.ssl) == (1, "pw", True)  # TLS and auth from the URL


def test_plain_tls_and_acl_user():
    target = redis_target(Settings(redis_url="rediss://worker:p%40ss@redis.internal:6380/3"))
    assert (
        not target.via_sentinel
        and target.ssl
        and (target.username, target.password, target.db) == ("worker", "p@ss", 3)
    )
    assert arq_redis_settings(Settings(redis_url="rediss://worker:pw@h:6380/3")).ssl


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+sentinel://h1:26379", "service name"),
        ("redis+sentinel://h1:port/mymaster", "bad sentinel address"),
        ("redis+sentinel://h1:26379/mymaster/zero", "path must be"),
        ("http://h1:6379/0", "unknown Redis URL scheme"),
        ("h1:6379", "needs a scheme"),
    ],
)
def test_bad_urls_are_refused_with_a_clear_message(url, words):
    with pytest.raises(ValidationError) as info:
        Settings(redis_url=url)
    assert words in str(info.value)


def test_bad_sentinel_list_is_refused():
    with pytest.raises(ValidationError, match="bad sentinel address"):
        Settings(redis_sentinels="s1:26379,s2:99999")


def test_the_readme_sentinel_example_parses():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    url = re.search(r"export TASKGATE_REDIS_URL='(redis\+sentinel://[^']+)'", readme)
    assert url is not None
    target = redis_target(Settings(redis_url=url[1]))
    assert target.service == "tgmaster" and len(target.sentinels) == 3 and target.password == "s3cret"


@pytest.mark.parametrize("command", [["scheduler"], ["worker"], ["api"], ["dev"]])
def test_a_bad_redis_setting_stops_a_process_with_a_clear_message(monkeypatch, capsys, command):
    from taskgate.cli import main

    monkeypatch.setenv("TASKGATE_REDIS_URL", "redis+sentinel://s1:26379")
    with pytest.raises(SystemExit) as info:
        main(command)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid TASKGATE_REDIS_URL" in err and "service name" in err and "Traceback" not in err
