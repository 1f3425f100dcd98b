"""The dashboard: login and session cookie rules, then the issue's done-when check: tasks driven
through the system are found with the same figures in /metrics, on the dashboard rendered in
headless Chromium, and through ``taskgate admin tasks``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.operator.browser import chromium_page
from tests.operator.test_admin_tasks import taskgate_cli
from tests.operator.test_metrics import drive
from tests.system import OpsSystem

TOKEN = "test-admin-token"


async def test_login_sets_a_strict_httponly_session_and_guards_every_page(ops: OpsSystem) -> None:
    async def get(path: str, cookies: dict | None = None) -> tuple[int, str]:
        async with ops.http.get(ops.api_url + path, allow_redirects=False, cookies=cookies) as resp:
            return resp.status, resp.headers.get("Location", "")

    ops.http.cookie_jar.clear()
    assert await get("/dashboard") == (303, "/dashboard/login")
    assert (await get("/dashboard/api/overview"))[0] == 401
    assert (await get("/dashboard/api/overview", {"tg_session": "99999999999.deadbeef"}))[0] == 401
    async with ops.http.post(
        ops.api_url + "/dashboard/login", data={"token": "wrong"}, allow_redirects=False
    ) as resp:
        assert resp.status == 401 and "Wrong admin token" in await resp.text()
        assert "tg_session" not in resp.cookies
    async with ops.http.post(
        ops.api_url + "/dashboard/login", data={"token": TOKEN}, allow_redirects=False
    ) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/dashboard"
        cookie = resp.cookies["tg_session"]
        raw = resp.headers["Set-Cookie"]
    assert TOKEN not in cookie.value and TOKEN not in raw
    assert "HttpOnly" in raw and "SameSite=Strict" in raw and "Path=/dashboard" in raw
    session = {"tg_session": cookie.value}
    assert (await get("/dashboard", session))[0] == 200
    assert (await get("/dashboard/api/overview", session))[0] == 200
    assert (await get("/dashboard/static/dashboard.js"))[0] == 200
    assert (await get("/dashboard/static/..%2Fapp.py"))[0] == 404


async def test_done_when_tasks_found_in_metrics_dashboard_and_cli(ops: OpsSystem, tmp_path: Path) -> None:
    t = await drive(ops)
    done, bad, waiting, account = t["done"], t["bad"], t["waiting"], t["account"]["id"]
    _, body = await ops.admin("GET", "/admin/v1/overview")
    overview = body["data"]
    metrics = await ops.scrape(ops.api_url)
    shot = Path(os.environ.get("TASKGATE_DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    async with chromium_page() as page:
        await page.goto(ops.api_url + "/dashboard")
        assert await page.eval("location.pathname") == "/dashboard/login"
        await page.eval(
            f"document.getElementById('token').value = {json.dumps(TOKEN)}; "
            "document.getElementById('login').submit(); true"
        )
        await page.wait_for("document.querySelector('#updated')?.dataset.status === 'ok'")
        assert TOKEN not in await page.eval("location.href") and await page.eval("document.cookie") == ""
        cookies = (await page.send("Network.getCookies"))["cookies"]
        session = next(c for c in cookies if c["name"] == "tg_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict"

        async def cell(key: str) -> str:
            return str(await page.eval(f"document.querySelector('[data-key=\"{key}\"]')?.textContent"))

        assert int(await cell("pending-fast")) == overview["lanes"]["fast"]["pending"] == 1
        assert (
            metrics[("taskgate_pending_tasks", (("lane", "fast"), ("plan", "developer"), ("pool", "ppu")))]
            == 1
        )
        assert (await cell("oldest-fast")).endswith(("s", "min"))
        assert await cell(f"slots-{account}") == "0 / 2"
        frozen = waiting["meta"]["usage"]["frozen"]
        assert int(await cell("frozen-credits")) == overview["frozen"]["credits"] == frozen
        price = done["meta"]["usage"]["consume"]
        assert (
            int(await cell("consumed-mj_quota"))
            == price
            == overview["credits_flow"]["units"]["mj_quota"]["consumed"]
        )
        assert int(await cell("refunded-mj_quota")) == bad["meta"]["usage"]["frozen"]
        assert await cell(f"reason-{bad['task_id']}") == bad["error"]["message"]
        assert await page.eval("document.getElementById('webhook-backlog').textContent") == "0"
        await page.screenshot(shot)
        # the page refreshes itself: a new waiting task shows up without a reload
        status, _ = await ops.call(
            "POST",
            "/api/v1/task",
            t["key"]["key"],
            json={"model": "Qubico/flux1-schnell", "task_type": "txt2img", "input": {"prompt": "one more"}},
        )
        assert status == 200
        await page.wait_for("document.querySelector('[data-key=\"pending-fast\"]').textContent === '2'")

        await page.eval(
            f"document.getElementById('search-input').value = {json.dumps(done['task_id'])}; "
            "document.querySelector('#search button').click(); true"
        )
        await page.wait_for("document.querySelector('[data-key=status]')?.textContent === 'completed'")
        _, shown = await ops.admin("GET", f"/admin/v1/tasks/{done['task_id']}")
        assert await cell("attempts") == str(shown["data"]["attempts"]["count"]) == "1"
        assert await cell("account") == account
        assert await cell("amount-charge") == str(price)
        await page.screenshot(shot.with_name(shot.stem + "-task.png"))

    code, out, err = await taskgate_cli(ops, "admin", "tasks", "list", "--json")
    assert code == 0, err
    listed = {row["task_id"]: row for row in json.loads(out)}
    assert listed[done["task_id"]]["status"] == "completed" and listed[done["task_id"]]["consume"] == price
    assert listed[bad["task_id"]]["error"] == bad["error"]["message"]
    assert (
        listed[waiting["task_id"]]["status"] == "pending" and listed[waiting["task_id"]]["frozen"] == frozen
    )
