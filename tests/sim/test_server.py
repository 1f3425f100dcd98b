from __future__ import annotations

import asyncio
from typing import Any

import pytest

from taskgate.sim.server import tiny_png
from tests.sim.harness import Sim, running_sim, sim_settings

KEY = "sim-key-alpha"


async def _job(sim: Sim, job_id: str, api_key: str = KEY) -> dict[str, Any]:
    status, body = await sim.get(f"/v1/jobs/{job_id}", api_key)
    assert status == 200, body
    view: dict[str, Any] = body
    return view


async def test_submit_poll_progress_complete_with_urls(sim: Sim) -> None:
    status, body, _ = await sim.submit(KEY, "a cat [sim duration=10]")
    assert status == 200 and body["created"] is True
    job_id = body["id"]
    assert (await _job(sim, job_id))["status"] == "pending"
    seen = []
    for _ in range(9):
        sim.clock.advance(1.0)
        view = await _job(sim, job_id)
        assert view["status"] == "running" and view["output"] is None
        seen.append(view["progress"])
    assert seen == sorted(seen) and 0 < seen[0] < seen[-1] < 100
    sim.clock.advance(1.0)
    done = await _job(sim, job_id)
    assert done["status"] == "completed" and done["progress"] == 100 and done["error"] is None
    urls = [done["output"]["image_url"], *done["output"]["image_urls"]]
    assert len(done["output"]["image_urls"]) == 4
    for url in urls:
        assert url.startswith(f"{sim.base_url}/files/{job_id}") and url.endswith(".png")
        async with sim.http.get(url) as resp:
            assert resp.status == 200 and resp.content_type == "image/png"
            assert await resp.read() == tiny_png()


def test_tiny_png_is_a_png() -> None:
    data = tiny_png()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")


async def test_files_route_rejects_other_names(sim: Sim) -> None:
    async with sim.http.get(f"{sim.base_url}/files/..%2Fsecret.txt") as resp:
        assert resp.status == 404


async def test_idempotent_submit_returns_the_same_job(sim: Sim) -> None:
    _, first, _ = await sim.submit(KEY, "[sim duration=5]", key="task-42")
    _, again, _ = await sim.submit(KEY, "[sim duration=5]", key="task-42")
    assert again == {"id": first["id"], "created": False}
    _, other_key, _ = await sim.submit("sim-key-beta", "[sim duration=5]", key="task-42")
    assert other_key["id"] != first["id"]
    _, stats = await sim.get("/sim/stats")
    assert stats["jobs_submitted"] == 2 and stats["submit_requests"] == 3
    assert stats["duplicate_submits"] == 1 and stats["duplicate_keys"] == {"task-42": 2}


@pytest.mark.parametrize("outcome", ["incorrect", "transient", "captcha", "banned"])
async def test_directive_outcomes_fail_the_job_with_that_kind(sim: Sim, outcome: str) -> None:
    _, body, _ = await sim.submit(KEY, f"x [sim duration=0.05 outcome={outcome}]")
    sim.clock.advance(0.06)
    view = await _job(sim, body["id"])
    assert view["status"] == "failed" and view["output"] is None
    assert view["error"]["kind"] == outcome and view["error"]["message"]


@pytest.mark.parametrize("outcome", ["captcha", "banned"])
async def test_captcha_and_ban_directives_flip_the_account(sim: Sim, outcome: str) -> None:
    await sim.submit(KEY, f"[sim duration=0.05 outcome={outcome}]", key="t1")
    status, body, _ = await sim.submit(KEY, "a cat", key="t2")
    assert status == 403 and body["error"]["kind"] == outcome
    status, _, _ = await sim.submit("sim-key-beta", "a cat", key="t2")  # other accounts unaffected
    assert status == 200
    status, health = await sim.get("/v1/health", KEY)
    assert status == 403 and health["error"]["kind"] == outcome


@pytest.mark.parametrize("outcome", ["incorrect", "transient"])
async def test_task_failures_leave_the_account_healthy(sim: Sim, outcome: str) -> None:
    await sim.submit(KEY, f"[sim duration=0 outcome={outcome}]", key="t1")
    status, _, _ = await sim.submit(KEY, "a cat", key="t2")
    assert status == 200


async def test_completed_directive_overrides_failure_rates() -> None:
    async with running_sim(sim_settings(sim_failure_rate=1.0)) as sim:
        _, forced, _ = await sim.submit(KEY, "[sim duration=0 outcome=completed]", key="t1")
        _, drawn, _ = await sim.submit(KEY, "[sim duration=0]", key="t2")
        assert (await _job(sim, forced["id"]))["status"] == "completed"
        failed = await _job(sim, drawn["id"])
        assert failed["status"] == "failed" and failed["error"]["kind"] == "transient"


@pytest.mark.parametrize(
    ("rate", "kind"),
    [("sim_incorrect_rate", "incorrect"), ("sim_captcha_rate", "captcha"), ("sim_ban_rate", "banned")],
)
async def test_configured_rates_drive_outcomes(rate: str, kind: str) -> None:
    async with running_sim(sim_settings(**{rate: 1.0})) as sim:
        _, body, _ = await sim.submit(KEY, "[sim duration=0]")
        view = await _job(sim, body["id"])
        assert view["status"] == "failed" and view["error"]["kind"] == kind


async def test_seeded_runs_repeat() -> None:
    async def outcomes(seed: int) -> list[str]:
        async with running_sim(sim_settings(sim_failure_rate=0.5), seed=seed) as sim:
            for i in range(30):
                await sim.submit(KEY, "[sim duration=0]", key=f"t{i}")
            return [str(job.outcome) for job in sim.state.jobs.values()]

    first = await outcomes(11)
    assert first == await outcomes(11)
    assert {"completed", "transient"} == set(first)


async def test_latency_depends_on_mode(sim: Sim) -> None:
    durations = {}
    for mode in ("turbo", "fast", "relax", ""):
        _, body, _ = await sim.submit(KEY, "a cat", mode=mode, key=f"t-{mode}")
        durations[mode] = sim.state.jobs[body["id"]].duration_s
    assert durations["turbo"] < durations["fast"] < durations["relax"]
    assert 0.8 * 0.8 <= durations[""] <= 0.8 * 1.2  # no mode -> fast


@pytest.mark.parametrize(("flag", "kind"), [("captcha", "captcha"), ("banned", "banned")])
async def test_account_flags_refuse_submits(sim: Sim, flag: str, kind: str) -> None:
    status, view = await sim.post(f"/sim/accounts/{KEY}", {flag: True})
    assert status == 200 and view[flag] is True
    status, body, _ = await sim.submit(KEY)
    assert status == 403 and body["error"]["kind"] == kind
    await sim.post(f"/sim/accounts/{KEY}", {flag: False})
    status, _, _ = await sim.submit(KEY)
    assert status == 200
    _, stats = await sim.get("/sim/stats")
    assert stats["refused"] == {kind: 1}


async def test_rate_limit_answers_429_with_retry_after_until_it_expires(sim: Sim) -> None:
    await sim.post(f"/sim/accounts/{KEY}", {"rate_limit_s": 4.5})
    status, body, headers = await sim.submit(KEY)
    assert status == 429 and body["error"]["kind"] == "rate_limited"
    assert headers["Retry-After"] == "5" and body["error"]["retry_after_s"] == 4.5
    status, _ = await sim.get("/v1/health", KEY)
    assert status == 429
    sim.clock.advance(4.6)
    status, _, _ = await sim.submit(KEY)
    assert status == 200


async def test_no_fast_hours_means_relax_only(sim: Sim) -> None:
    await sim.post(f"/sim/accounts/{KEY}", {"fast_hours_left": 0})
    for mode in ("fast", "turbo"):
        status, body, _ = await sim.submit(KEY, mode=mode, key=f"t-{mode}")
        assert status == 403 and body["error"]["kind"] == "fast_hours"
    status, _, _ = await sim.submit(KEY, mode="relax", key="t-relax")
    assert status == 200
    status, health = await sim.get("/v1/health", KEY)
    assert status == 200 and health["fast_hours_left"] == 0


async def test_fast_jobs_use_up_fast_hours(sim: Sim) -> None:
    await sim.post(f"/sim/accounts/{KEY}", {"fast_hours_left": 0.001})  # 3.6 s
    status, _, _ = await sim.submit(KEY, "[sim duration=4]", key="t1")
    assert status == 200
    status, body, _ = await sim.submit(KEY, "[sim duration=4]", key="t2")
    assert status == 403 and body["error"]["kind"] == "fast_hours"


async def test_stats_count_concurrency_per_key(sim: Sim) -> None:
    for i in range(3):
        await sim.submit(KEY, "[sim duration=10]", key=f"t{i}")
    await sim.submit("sim-key-beta", "[sim duration=1]", key="b1")
    _, stats = await sim.get("/sim/stats")
    assert stats["running_now"] == 4 and stats["running_by_key"] == {KEY: 3, "sim-key-beta": 1}
    sim.clock.advance(5)  # beta's job is over
    await sim.submit(KEY, "[sim duration=10]", key="t3")
    _, stats = await sim.get("/sim/stats")
    assert stats["max_concurrent"] == {KEY: 4, "sim-key-beta": 1}
    assert stats["running_now"] == 4 and stats["outcomes"] == {"completed": 5}
    sim.clock.advance(20)
    _, stats = await sim.get("/sim/stats")
    assert stats["running_now"] == 0 and stats["max_concurrent"][KEY] == 4


async def test_cancel_ends_a_running_job(sim: Sim) -> None:
    _, body, _ = await sim.submit(KEY, "[sim duration=10]")
    sim.clock.advance(5)
    assert await sim.post(f"/v1/jobs/{body['id']}/cancel", api_key=KEY) == (200, {"cancelled": True})
    view = await _job(sim, body["id"])
    assert view["status"] == "failed" and view["error"]["message"] == "cancelled" and view["progress"] == 50
    assert await sim.post(f"/v1/jobs/{body['id']}/cancel", api_key=KEY) == (200, {"cancelled": False})
    _, stats = await sim.get("/sim/stats")
    assert stats["running_now"] == 0 and stats["cancelled"] == 1


async def test_cancel_after_the_end_is_refused(sim: Sim) -> None:
    _, body, _ = await sim.submit(KEY, "[sim duration=1]")
    sim.clock.advance(2)
    assert await sim.post(f"/v1/jobs/{body['id']}/cancel", api_key=KEY) == (200, {"cancelled": False})
    assert (await _job(sim, body["id"]))["status"] == "completed"


async def test_jobs_are_private_to_their_key(sim: Sim) -> None:
    _, body, _ = await sim.submit(KEY)
    status, err = await sim.get(f"/v1/jobs/{body['id']}", "sim-key-beta")
    assert status == 404 and err["error"]["kind"] == "not_found"
    status, _ = await sim.get("/v1/jobs/nope", KEY)
    assert status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"task_type": "imagine", "input": {}, "idempotency_key": "k"},
        {"model": "", "task_type": "imagine", "input": {}, "idempotency_key": "k"},
        {"model": "m", "task_type": "imagine", "input": [], "idempotency_key": "k"},
        {"model": "m", "task_type": "imagine", "input": {}},
        {"model": "m", "task_type": "imagine", "mode": 3, "input": {}, "idempotency_key": "k"},
        ["not", "an", "object"],
    ],
)
async def test_bad_bodies_are_incorrect(sim: Sim, body: Any) -> None:
    status, err = await sim.post("/v1/jobs", body, api_key=KEY)
    assert status == 400 and err["error"]["kind"] == "incorrect"


async def test_missing_api_key_is_refused(sim: Sim) -> None:
    status, err = await sim.post("/v1/jobs", {"model": "m"})
    assert status == 401 and err["error"]["kind"] == "credentials_rejected"
    status, _ = await sim.get("/v1/health")
    assert status == 401


async def test_account_controls_ignore_bad_values(sim: Sim) -> None:
    status, view = await sim.post(f"/sim/accounts/{KEY}", {"captcha": "yes", "rate_limit_s": "x", "other": 1})
    assert status == 200 and view == {
        "captcha": False,
        "banned": False,
        "key_rejected": False,
        "rate_limit_s": 0.0,
        "fast_hours_left": None,
    }
    status, _ = await sim.post(f"/sim/accounts/{KEY}", [1])
    assert status == 400
    assert await sim.get(f"/sim/accounts/{KEY}") == (200, view)


@pytest.mark.parametrize(("env", "expected"), [("5", 5), ("", None)])
def test_seed_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: str, expected: int | None
) -> None:
    from taskgate.settings import Settings
    from taskgate.sim.server import sim_seed

    monkeypatch.setenv("TASKGATE_SIM_SEED", env)
    assert sim_seed(Settings()) == expected


def test_a_junk_seed_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from taskgate.settings import Settings

    monkeypatch.setenv("TASKGATE_SIM_SEED", "junk")
    with pytest.raises(ValidationError, match="sim_seed"):
        Settings()


async def test_account_flipping_directive_strikes_once_per_task() -> None:
    from taskgate.settings import Settings
    from taskgate.sim.directives import SimOutcome
    from taskgate.sim.state import SimState, SubmitBody

    state = SimState(Settings(), seed=1)
    body = SubmitBody(
        model="midjourney",
        task_type="imagine",
        mode="fast",
        input={"prompt": "x [sim outcome=banned]"},
        idempotency_key="t-1",
    )
    first, _ = state.submit("key-a", body)
    second, _ = state.submit("key-b", body)  # the same task retried on another account
    assert first.outcome == SimOutcome.BANNED and state.account("key-a").banned
    assert second.outcome == SimOutcome.COMPLETED and not state.account("key-b").banned


@pytest.mark.parametrize("path", ["/v1/jobs", "/sim/accounts/k"])
async def test_a_body_not_in_its_content_encoding_is_a_400(sim: Sim, path: str) -> None:
    """Headers first, then a body that is not gzip: the handler is already reading it (was a 500)."""
    body = b'{"model": "midjourney"}'
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Type: application/json\r\n"
        f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.server.port)
    writer.write(head.encode())
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.write(body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
