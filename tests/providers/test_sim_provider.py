from __future__ import annotations

import aiohttp
import pytest

from taskgate.providers.base import ErrorKind, ProviderError, UpstreamRequest, UpstreamState
from taskgate.providers.sim import SimProvider
from tests.providers.conftest import SECRET, access_for
from tests.providers.fake_goapi import FakeGoapi
from tests.sim.harness import Sim


def _request(
    prompt: str = "a cat",
    *,
    mode: str = "fast",
    key: str = "task-1",
    model: str = "midjourney",
) -> UpstreamRequest:
    return UpstreamRequest(
        model=model, task_type="imagine", mode=mode, input={"prompt": prompt}, idempotency_key=key
    )


def _assert_no_secret(exc: ProviderError) -> None:
    for text in (str(exc), repr(exc), exc.raw, exc.message):
        assert SECRET not in text


@pytest.fixture
def provider(session: aiohttp.ClientSession) -> SimProvider:
    return SimProvider(session, timeout_s=5.0)


async def test_submit_poll_complete(sim: Sim, provider: SimProvider) -> None:
    access = access_for(sim.base_url, "sim")
    upstream_id = await provider.submit(access, _request("a cat [sim duration=10]"))
    assert (await provider.poll(access, upstream_id)).state == UpstreamState.PENDING
    sim.clock.advance(5)
    running = await provider.poll(access, upstream_id)
    assert running.state == UpstreamState.RUNNING and running.progress == 50 and running.output is None
    sim.clock.advance(5)
    done = await provider.poll(access, upstream_id)
    assert done.state == UpstreamState.COMPLETED and done.progress == 100 and done.error is None
    assert done.output is not None and done.output["image_url"].endswith(f"/files/{upstream_id}.png")
    assert len(done.output["image_urls"]) == 4
    assert sim.state.jobs[upstream_id].api_key == SECRET  # the key travelled in x-api-key


async def test_resubmit_returns_the_same_upstream_job(sim: Sim, provider: SimProvider) -> None:
    access = access_for(sim.base_url, "sim")
    first = await provider.submit(access, _request(key="task-9"))
    assert await provider.submit(access, _request(key="task-9")) == first
    assert sim.state.stats()["jobs_submitted"] == 1


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        ("incorrect", ErrorKind.INCORRECT),
        ("transient", ErrorKind.TRANSIENT),
        ("captcha", ErrorKind.CAPTCHA),
        ("banned", ErrorKind.BANNED),
    ],
)
async def test_failed_jobs_carry_a_classified_error(
    sim: Sim, provider: SimProvider, outcome: str, kind: ErrorKind
) -> None:
    access = access_for(sim.base_url, "sim")
    upstream_id = await provider.submit(access, _request(f"[sim duration=0.05 outcome={outcome}]"))
    sim.clock.advance(0.1)
    status = await provider.poll(access, upstream_id)
    assert status.state == UpstreamState.FAILED and status.error is not None
    assert status.error.kind == kind


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [
        ({"captcha": True}, ErrorKind.CAPTCHA),
        ({"banned": True}, ErrorKind.BANNED),
        ({"fast_hours_left": 0}, ErrorKind.FAST_HOURS),
    ],
)
async def test_account_behaviours_refuse_submits(
    sim: Sim, provider: SimProvider, behaviour: dict[str, object], kind: ErrorKind
) -> None:
    access = access_for(sim.base_url, "sim")
    await sim.post(f"/sim/accounts/{SECRET}", behaviour)
    with pytest.raises(ProviderError) as caught:
        await provider.submit(access, _request(mode="turbo"))
    assert caught.value.kind == kind
    _assert_no_secret(caught.value)


async def test_rate_limit_carries_retry_after(sim: Sim, provider: SimProvider) -> None:
    access = access_for(sim.base_url, "sim")
    await sim.post(f"/sim/accounts/{SECRET}", {"rate_limit_s": 2.5})
    with pytest.raises(ProviderError) as caught:
        await provider.submit(access, _request())
    assert caught.value.kind == ErrorKind.RATE_LIMITED and caught.value.retry_after_s == 3.0
    with pytest.raises(ProviderError) as probed:
        await provider.probe(access)
    assert probed.value.kind == ErrorKind.RATE_LIMITED


async def test_invalid_request_is_incorrect(sim: Sim, provider: SimProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.submit(access_for(sim.base_url, "sim"), _request(model=""))
    assert caught.value.kind == ErrorKind.INCORRECT


async def test_probe(sim: Sim, provider: SimProvider) -> None:
    access = access_for(sim.base_url, "sim")
    await provider.probe(access)
    await sim.post(f"/sim/accounts/{SECRET}", {"banned": True})
    with pytest.raises(ProviderError) as caught:
        await provider.probe(access)
    assert caught.value.kind == ErrorKind.BANNED
    _assert_no_secret(caught.value)


async def test_cancel(sim: Sim, provider: SimProvider) -> None:
    access = access_for(sim.base_url, "sim")
    upstream_id = await provider.submit(access, _request("[sim duration=10]"))
    assert await provider.cancel(access, upstream_id) is True
    assert await provider.cancel(access, upstream_id) is False
    assert await provider.cancel(access, "no-such-job") is False
    status = await provider.poll(access, upstream_id)
    assert status.state == UpstreamState.FAILED


async def test_unknown_job_poll_is_transient(sim: Sim, provider: SimProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.poll(access_for(sim.base_url, "sim"), "no-such-job")
    assert caught.value.kind == ErrorKind.TRANSIENT


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (500, "oops", ErrorKind.TRANSIENT),
        (503, {"error": {"kind": "weird", "message": "down"}}, ErrorKind.TRANSIENT),
        (402, {"error": {"message": "no money"}}, ErrorKind.QUOTA),
        (200, "not json", ErrorKind.TRANSIENT),
        (200, {"no": "id"}, ErrorKind.TRANSIENT),
    ],
)
async def test_transport_level_answers_are_classified(
    goapi: FakeGoapi, provider: SimProvider, status: int, body: object, kind: ErrorKind
) -> None:
    goapi.on("POST", "/v1/jobs", status, body)
    with pytest.raises(ProviderError) as caught:
        await provider.submit(access_for(goapi.base_url, "sim"), _request())
    assert caught.value.kind == kind


async def test_echoed_keys_are_scrubbed(goapi: FakeGoapi, provider: SimProvider) -> None:
    goapi.on("POST", "/v1/jobs", 403, {"error": {"kind": "banned", "message": f"key {SECRET} is banned"}})
    with pytest.raises(ProviderError) as caught:
        await provider.submit(access_for(goapi.base_url, "sim"), _request())
    assert caught.value.kind == ErrorKind.BANNED and "***" in str(caught.value)
    _assert_no_secret(caught.value)


async def test_connection_refused_is_transient(provider: SimProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.poll(access_for("http://127.0.0.1:1", "sim"), "x")
    assert caught.value.kind == ErrorKind.TRANSIENT
    _assert_no_secret(caught.value)


async def test_timeout_is_transient(goapi: FakeGoapi, session: aiohttp.ClientSession) -> None:
    goapi.on("GET", "/v1/health", 200, {"status": "ok"}, delay_s=1.0)
    with pytest.raises(ProviderError) as caught:
        await SimProvider(session, timeout_s=0.1).probe(access_for(goapi.base_url, "sim"))
    assert caught.value.kind == ErrorKind.TRANSIENT and "timed out" in str(caught.value)
