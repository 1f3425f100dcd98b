from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from taskgate.providers.base import ErrorKind, ProviderError, UpstreamRequest, UpstreamState
from taskgate.providers.goapi import GoapiProvider
from tests.providers.conftest import SECRET, access_for
from tests.providers.fake_goapi import FakeGoapi, envelope, task

TASK = "/api/v1/task"


def _request(model: str = "midjourney", task_input: dict[str, Any] | None = None) -> UpstreamRequest:
    return UpstreamRequest(
        model=model,
        task_type="imagine",
        mode="fast",
        input=task_input if task_input is not None else {"prompt": "a cat"},
        idempotency_key="task-7",
    )


def _assert_no_secret(exc: ProviderError) -> None:
    for text in (str(exc), repr(exc), exc.raw, exc.message):
        assert SECRET not in text


@pytest.fixture
def provider(session: aiohttp.ClientSession) -> GoapiProvider:
    return GoapiProvider(session, timeout_s=5.0)


async def test_submit_sends_the_unified_task_body(goapi: FakeGoapi, provider: GoapiProvider) -> None:
    goapi.on("POST", TASK, 200, envelope(task("up-1", "pending")))
    assert await provider.submit(access_for(goapi.base_url + "/", "goapi"), _request()) == "up-1"
    method, path, headers, body = goapi.requests[-1]
    assert (method, path) == ("POST", TASK)
    assert headers["x-api-key"] == SECRET and headers["Idempotency-Key"] == "task-7"
    assert body == {
        "model": "midjourney",
        "task_type": "imagine",
        "input": {"prompt": "a cat", "process_mode": "fast"},
        "config": {"service_mode": ""},
    }


async def test_submit_keeps_an_explicit_mode_and_leaves_other_models_alone(
    goapi: FakeGoapi, provider: GoapiProvider
) -> None:
    goapi.on("POST", TASK, 200, envelope(task("up-1", "pending")))
    access = access_for(goapi.base_url, "goapi")
    await provider.submit(access, _request(task_input={"prompt": "x", "process_mode": "relax"}))
    assert goapi.requests[-1][3]["input"]["process_mode"] == "relax"
    await provider.submit(access, _request(model="Qubico/flux1-schnell"))
    assert "process_mode" not in goapi.requests[-1][3]["input"]


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("pending", UpstreamState.PENDING),
        ("staged", UpstreamState.PENDING),
        ("Staged", UpstreamState.PENDING),
        ("Pending", UpstreamState.PENDING),
        ("processing", UpstreamState.RUNNING),
        ("Processing", UpstreamState.RUNNING),
        ("completed", UpstreamState.COMPLETED),
        ("Completed", UpstreamState.COMPLETED),
        ("failed", UpstreamState.FAILED),
        ("Failed", UpstreamState.FAILED),
    ],
)
async def test_statuses_map_to_upstream_states(
    goapi: FakeGoapi, provider: GoapiProvider, status: str, state: UpstreamState
) -> None:
    goapi.on("GET", f"{TASK}/up-1", 200, envelope(task("up-1", status, {"progress": 40})))
    result = await provider.poll(access_for(goapi.base_url, "goapi"), "up-1")
    assert result.state == state
    assert result.progress == (100 if state == UpstreamState.COMPLETED else 40)


async def test_poll_through_to_completion(goapi: FakeGoapi, provider: GoapiProvider) -> None:
    output = {"image_url": "https://cdn/x.png", "image_urls": ["https://cdn/x1.png"], "progress": 100}
    goapi.on("GET", f"{TASK}/up-1", 200, envelope(task("up-1", "processing", {"progress": 35})))
    goapi.on("GET", f"{TASK}/up-1", 200, envelope(task("up-1", "completed", output)))
    access = access_for(goapi.base_url, "goapi")
    running = await provider.poll(access, "up-1")
    assert (running.state, running.progress) == (UpstreamState.RUNNING, 35)
    done = await provider.poll(access, "up-1")
    assert done.state == UpstreamState.COMPLETED and done.output == output and done.error is None


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"code": 10000, "message": "Banned Prompt: gore", "raw_message": ""}, ErrorKind.INCORRECT),
        ({"code": 400, "message": "invalid aspect ratio"}, ErrorKind.INCORRECT),
        ({"code": 10000, "message": "failed", "raw_message": "captcha required"}, ErrorKind.CAPTCHA),
        ({"code": 10000, "message": "account has been banned"}, ErrorKind.BANNED),
        ({"code": 10000, "message": "fast hours exhausted"}, ErrorKind.FAST_HOURS),
        ({"code": 402, "message": "no money"}, ErrorKind.QUOTA),
        ({"code": 500, "message": "worker crashed"}, ErrorKind.TRANSIENT),
        ({"code": 10000, "message": "something odd"}, ErrorKind.TRANSIENT),
        (None, ErrorKind.TRANSIENT),
    ],
)
async def test_failed_tasks_are_classified(
    goapi: FakeGoapi, provider: GoapiProvider, error: Any, kind: ErrorKind
) -> None:
    body = task("up-1", "failed")
    body["error"] = error
    goapi.on("GET", f"{TASK}/up-1", 200, envelope(body))
    result = await provider.poll(access_for(goapi.base_url, "goapi"), "up-1")
    assert result.state == UpstreamState.FAILED and result.error is not None and result.error.kind == kind


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "retry_after"),
    [
        (402, envelope(code=402, message="insufficient credits"), {}, ErrorKind.QUOTA, None),
        (429, envelope(code=429, message="slow down"), {"Retry-After": "7"}, ErrorKind.RATE_LIMITED, 7.0),
        (
            429,
            envelope(code=429),
            {"Retry-After": "Thu, 01 Jan 1970 00:00:10 GMT"},
            ErrorKind.RATE_LIMITED,
            0.0,
        ),
        (401, envelope(code=401, message="Invalid API key"), {}, ErrorKind.CREDENTIALS, None),
        (403, envelope(code=403, message="please complete the captcha"), {}, ErrorKind.CAPTCHA, None),
        (403, envelope(code=403, message="account banned"), {}, ErrorKind.BANNED, None),
        (400, envelope(code=400, message="invalid request: no prompt"), {}, ErrorKind.INCORRECT, None),
        (500, envelope(code=500, message="internal"), {}, ErrorKind.TRANSIENT, None),
        (502, "<html>bad gateway</html>", {}, ErrorKind.TRANSIENT, None),
        (503, {}, {}, ErrorKind.TRANSIENT, None),
        (200, envelope(code=402, message="insufficient quota"), {}, ErrorKind.QUOTA, None),
        (200, envelope(code=10000, message="oops"), {}, ErrorKind.TRANSIENT, None),
        (200, "not json", {}, ErrorKind.TRANSIENT, None),
        (200, envelope({"no": "task id"}), {}, ErrorKind.TRANSIENT, None),
    ],
)
async def test_submit_errors_are_classified(
    goapi: FakeGoapi,
    provider: GoapiProvider,
    status: int,
    body: Any,
    headers: dict[str, str],
    kind: ErrorKind,
    retry_after: float | None,
) -> None:
    goapi.on("POST", TASK, status, body, headers=headers)
    with pytest.raises(ProviderError) as caught:
        await provider.submit(access_for(goapi.base_url, "goapi"), _request())
    assert caught.value.kind == kind and caught.value.retry_after_s == retry_after
    _assert_no_secret(caught.value)


async def test_http_date_retry_after_in_the_future(goapi: FakeGoapi, provider: GoapiProvider) -> None:
    goapi.on("POST", TASK, 429, envelope(code=429), headers={"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"})
    with pytest.raises(ProviderError) as caught:
        await provider.submit(access_for(goapi.base_url, "goapi"), _request())
    assert caught.value.retry_after_s is not None and caught.value.retry_after_s > 3600


async def test_poll_errors_are_classified(goapi: FakeGoapi, provider: GoapiProvider) -> None:
    goapi.on("GET", f"{TASK}/up-1", 401, envelope(code=401, message="key revoked"))
    with pytest.raises(ProviderError) as caught:
        await provider.poll(access_for(goapi.base_url, "goapi"), "up-1")
    assert caught.value.kind == ErrorKind.CREDENTIALS
    goapi.on("GET", f"{TASK}/up-2", 200, envelope(task("up-2", "exploded")))
    with pytest.raises(ProviderError) as unknown:
        await provider.poll(access_for(goapi.base_url, "goapi"), "up-2")
    assert unknown.value.kind == ErrorKind.TRANSIENT


async def test_cancel(goapi: FakeGoapi, provider: GoapiProvider) -> None:
    access = access_for(goapi.base_url, "goapi")
    goapi.on("POST", f"{TASK}/up-1/cancel", 200, envelope({"task_id": "up-1"}))
    assert await provider.cancel(access, "up-1") is True
    goapi.on("POST", f"{TASK}/up-2/cancel", 400, envelope(code=400, message="task is not cancellable"))
    assert await provider.cancel(access, "up-2") is False
    assert await provider.cancel(access, "up-3") is False  # 404
    goapi.on("POST", f"{TASK}/up-4/cancel", 500, envelope(code=500, message="boom"))
    with pytest.raises(ProviderError) as caught:
        await provider.cancel(access, "up-4")
    assert caught.value.kind == ErrorKind.TRANSIENT


async def test_probe(goapi: FakeGoapi, provider: GoapiProvider) -> None:
    access = access_for(goapi.base_url, "goapi")
    goapi.on("GET", "/api/v1/account", 200, envelope({"plan": "premium"}))
    goapi.on("GET", "/api/v1/account", 401, envelope(code=401, message=f"unknown key {SECRET}"))
    await provider.probe(access)
    with pytest.raises(ProviderError) as caught:
        await provider.probe(access)
    assert caught.value.kind == ErrorKind.CREDENTIALS and "***" in str(caught.value)
    _assert_no_secret(caught.value)
    assert goapi.requests[0][2]["x-api-key"] == SECRET


async def test_echoed_keys_are_scrubbed_from_task_errors(goapi: FakeGoapi, provider: GoapiProvider) -> None:
    body = task("up-1", "failed", error={"code": 500, "message": f"bad {SECRET}", "raw_message": SECRET})
    goapi.on("GET", f"{TASK}/up-1", 200, envelope(body))
    result = await provider.poll(access_for(goapi.base_url, "goapi"), "up-1")
    assert result.error is not None
    _assert_no_secret(result.error)


async def test_transport_failures_are_transient(goapi: FakeGoapi, session: aiohttp.ClientSession) -> None:
    provider = GoapiProvider(session, timeout_s=0.1)
    with pytest.raises(ProviderError) as refused:
        await provider.probe(access_for("http://127.0.0.1:1", "goapi"))
    assert refused.value.kind == ErrorKind.TRANSIENT
    _assert_no_secret(refused.value)
    goapi.on("GET", f"{TASK}/slow", 200, envelope(task("slow", "pending")), delay_s=1.0)
    with pytest.raises(ProviderError) as slow:
        await provider.poll(access_for(goapi.base_url, "goapi"), "slow")
    assert slow.value.kind == ErrorKind.TRANSIENT


async def test_submit_registers_the_callback_as_webhook_config(
    goapi: FakeGoapi, provider: GoapiProvider
) -> None:
    goapi.on("POST", TASK, 200, envelope(task("up-1", "pending")))
    url = "https://tg.example.com/callbacks/v1/goapi/task-7/2"
    request = UpstreamRequest(
        model="midjourney",
        task_type="imagine",
        mode="fast",
        input={"prompt": "a cat"},
        idempotency_key="task-7",
        callback_url=url,
        callback_secret="attempt-secret",
    )
    await provider.submit(access_for(goapi.base_url, "goapi"), request)
    assert goapi.requests[-1][3]["config"] == {
        "service_mode": "",
        "webhook_config": {"endpoint": url, "secret": "attempt-secret"},
    }
