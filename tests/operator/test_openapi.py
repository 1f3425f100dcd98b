"""OpenAPI 3.1 at /openapi.json: valid (openapi-spec-validator), lists exactly the app's routes,
its response models accept what the API really returns, and /docs renders it in Chromium."""

from __future__ import annotations

from openapi_spec_validator import validate

from taskgate.api import schemas
from taskgate.api.app import create_app
from taskgate.api.openapi import OPERATIONS
from taskgate.settings import Settings
from tests.operator.browser import chromium_page
from tests.operator.test_metrics import drive
from tests.system import OpsSystem


def app_routes(settings: Settings) -> set[tuple[str, str]]:
    """The app's routes, less the trailing-slash twins of customer routes (the same operation)."""
    app = create_app(settings)
    routes = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    return {(m, p) for m, p in routes if not (p.endswith("/") and (m, p.rstrip("/")) in routes)}


async def test_document_is_valid_and_lists_every_route(ops: OpsSystem) -> None:
    async with ops.http.get(ops.api_url + "/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    documented = {(m.upper(), path) for path, ops_ in doc["paths"].items() for m in ops_}
    routes = app_routes(ops.settings)
    assert routes - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routes == set(), "documented routes the app does not serve"
    assert set(OPERATIONS) == documented
    create = doc["paths"]["/api/v1/task"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "CreateTaskRequest"
    )
    assert "TaskStatus" in doc["components"]["schemas"]  # referenced by the admin list's query


async def test_response_models_match_real_responses(ops: OpsSystem) -> None:
    t = await drive(ops)
    key = t["key"]["key"]
    _, body = await ops.call("GET", f"/api/v1/task/{t['done']['task_id']}", key)
    schemas.TaskObject.model_validate(body["data"])
    _, body = await ops.call("GET", "/api/v1/tasks", key)
    schemas.TaskPage.model_validate(body["data"])
    _, body = await ops.admin("GET", f"/admin/v1/tasks/{t['bad']['task_id']}")
    schemas.TaskDetail.model_validate(body["data"])
    _, body = await ops.admin("GET", "/admin/v1/overview")
    schemas.Overview.model_validate(body["data"])
    _, body = await ops.admin("GET", "/admin/v1/tasks")
    assert [schemas.TaskSummary.model_validate(row).task_id for row in body["data"]]


async def test_docs_page_renders_every_operation(ops: OpsSystem) -> None:
    async with chromium_page() as page:
        await page.goto(ops.api_url + "/docs")
        count = await page.wait_for("document.querySelectorAll('[data-op]').length")
        rendered = set(await page.eval("[...document.querySelectorAll('[data-op]')].map(e => e.dataset.op)"))
        assert await page.eval("document.getElementById('schema-TaskObject') !== null")
    assert count == len(OPERATIONS)
    assert rendered == {f"{m} {p}" for m, p in OPERATIONS}
