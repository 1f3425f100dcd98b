"""Route fuzzer (hardening): hostile requests to every route of the API (task, account,
admin, health) must never get a 5xx, every error answer is the §4 envelope, a refused request
changes nothing in Redis, and the captured logs hold no secret and no line over the cap.

``make test`` runs ``FUZZ_EXAMPLES`` examples (default 400, well under a minute). A long run:

    TASKGATE_FUZZ_EXAMPLES=10000 .venv/bin/pytest -q -s --timeout=0 tests/api/test_route_fuzz.py

prints the figures (requests, statuses, 5xx, secrets found in the logs)."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections import Counter

import pytest
import structlog
from aiohttp import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from taskgate.logging import LINE_CAP, configure_logging
from taskgate.store.keys import Keys
from tests.api.fuzz_strategies import FuzzContext, hostile_texts, requests

FUZZ_EXAMPLES = int(os.environ.get("TASKGATE_FUZZ_EXAMPLES", "400"))
NOT_ENVELOPED = {"/metrics", "/openapi.json"}  # Prometheus text / the OpenAPI document on success


def _html_page(route: str) -> bool:
    """The dashboard's and docs' pages answer HTML (a login form with 401 included); their JSON
    endpoints under /dashboard/api/ use the envelope like every other route."""
    if route.startswith("/dashboard/api/"):
        return False
    return route.startswith(("/docs", "/dashboard"))


async def fast_snapshot(redis: Redis, keys: Keys) -> dict[bytes, bytes]:
    names = [k async for k in redis.scan_iter(match=keys.pattern(), count=1000)]
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.dump(name)
        values = await pipe.execute()
    return dict(zip(names, values, strict=True))


@pytest.fixture
def log_sink(monkeypatch):
    sink = io.StringIO()
    monkeypatch.setattr(sys, "stderr", sink)
    configure_logging("json", "DEBUG")
    monkeypatch.undo()
    yield sink
    logging.getLogger().handlers = []
    structlog.reset_defaults()


@pytest.fixture
async def fuzz_env(make_client, services, log_sink):
    client = await make_client()
    _, key = await services.users.create("developer", wallets={"mj_quota": 30, "credits": 50})
    _, other_key = await services.users.create("free", wallets={"mj_quota": 30})
    victim, _ = await services.users.create("free")  # the admin routes' target (its key gets rotated)
    secret = "whk-fuzz-secret-93c1f0"
    acct_secret = secret + "-acct"
    body = {
        "model": "midjourney",
        "task_type": "imagine",
        "input": {"prompt": "a cat"},
        "config": {"webhook_config": {"endpoint": "https://example.com/h", "secret": secret}},
    }
    ids = []
    for k in (key, other_key):
        resp = await client.post("/api/v1/task", json=body, headers={"x-api-key": k})
        ids.append((await resp.json())["data"]["task_id"])
    routes = sorted(
        {
            (r.method, r.resource.canonical)
            for r in client.app.router.routes()
            if r.method in ("GET", "POST", "PATCH", "DELETE", "PUT") and r.resource is not None
        }
    )
    ctx = FuzzContext(
        routes=routes,
        api_keys=[key, other_key],
        admin_token="test-admin-token",
        webhook_secret=secret,
        ids={"task_id": ids, "user_id": [victim], "account_id": ["nope"], "digest": ["x"]},
    )
    stats: Counter[str] = Counter()
    yield client, ctx, stats, [key, other_key, "test-admin-token", secret, acct_secret]
    print(
        f"\nroute fuzz: {stats['requests']} requests, {stats['5xx']} 5xx, "
        f"{stats['unsent']} not sendable by the client, {stats['log_lines']} log lines checked "
        f"(0 secrets, 0 over {LINE_CAP} chars), statuses "
        f"{dict(sorted((k, v) for k, v in stats.items() if k.isdigit()))}"
    )


def _envelope_ok(status: int, text: str) -> bool:
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") == status and {"data", "message"} <= body.keys()


def _route_of(path: str) -> str:
    return path.split("?", 1)[0]


async def _one(client, redis, keys, stats, method, path, headers, body) -> None:
    before = await fast_snapshot(redis, keys)
    try:
        resp = await client.request(method, path, data=body, headers=headers)
        text = await resp.text(errors="replace")
    except (ClientError, ValueError):  # the client itself refuses such a request (e.g. header text)
        stats["unsent"] += 1
        return
    stats["requests"] += 1
    stats[str(resp.status)] += 1
    if resp.status >= 500:
        stats["5xx"] += 1
    assert resp.status < 500, (method, path, headers, body, text[:500])
    route = _route_of(path)
    if not _html_page(route) and (resp.status >= 400 or route not in NOT_ENVELOPED):
        assert _envelope_ok(resp.status, text), (method, path, resp.status, text[:300])
    if resp.status >= 400 and "banned word" not in text:
        assert await fast_snapshot(redis, keys) == before, (method, path, resp.status, text[:300])


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_no_route_answers_5xx_or_changes_state_when_refused(fuzz_env, redis, keys, log_sink, data):
    client, ctx, stats, secrets = fuzz_env
    method, path, headers, body = data.draw(requests(ctx))
    await _one(client, redis, keys, stats, method, path, headers, body)
    _check_logs(log_sink, stats, secrets)


def _check_logs(log_sink, stats, secrets) -> None:
    """The log lines written since the last check hold no secret and none is over the cap."""
    logs = log_sink.getvalue()[stats["log_offset"] :]
    stats["log_offset"] += len(logs)
    stats["log_lines"] += logs.count("\n")
    for secret in secrets:
        assert secret not in logs, "a secret reached the logs"
    assert all(len(line) <= LINE_CAP for line in logs.splitlines()), "a log line over the cap"


async def test_hostile_corpus_on_every_route_with_valid_credentials(fuzz_env, redis, keys, log_sink):
    """Each known-hostile body to each route that takes one, authenticated (so it gets past the
    key check to the parsing and validation behind it)."""
    client, ctx, stats, secrets = fuzz_env
    headers = {"x-api-key": ctx.api_keys[0], "x-admin-token": ctx.admin_token}
    for method, pattern in ctx.routes:
        if method not in ("POST", "PATCH", "PUT"):
            continue
        path = pattern.replace("{task_id}", ctx.ids["task_id"][0]).replace("{user_id}", ctx.ids["user_id"][0])
        for text in hostile_texts(ctx):
            body = text.encode("utf-8", "surrogatepass")
            await _one(client, redis, keys, stats, method, path, headers, body)
    _check_logs(log_sink, stats, secrets)
