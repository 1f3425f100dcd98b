"""The OpenAPI 3.1 document at ``/openapi.json``, built from the pydantic models of requests and
responses, and a docs page at ``/docs`` that renders it (shipped in the package, no CDN).

Every route of the app is listed in ``OPERATIONS``; a test checks both ways, so a new route without
documentation fails the suite. The trailing-slash twins of customer routes (``/api/v1/task/``) are the
same operations and are not listed twice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from taskgate import __version__
from taskgate.api import admin_routes, schemas
from taskgate.api.routes import CancelBatch
from taskgate.api.task_admin_routes import TaskQuery
from taskgate.models import CreateTaskRequest
from taskgate.pool.registry import AccountSpec

STATIC = Path(__file__).resolve().parent / "static"
REF = "#/components/schemas/{model}"


@dataclass(frozen=True, slots=True)
class Op:
    summary: str
    tag: str
    auth: str | None = None  # "api_key" | "admin_token" | "session"
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    data: type[BaseModel] | str | None = None  # a model, "list:<Model>", or None for any JSON
    content: str = "application/json"


A, T = "api_key", "admin_token"
OPERATIONS: dict[tuple[str, str], Op] = {
    ("POST", "/api/v1/task"): Op(
        "Create a task (GoAPI unified API)", "tasks", A, CreateTaskRequest, data=schemas.TaskObject
    ),
    ("GET", "/api/v1/task/{task_id}"): Op("Get a task", "tasks", A, data=schemas.TaskObject),
    ("POST", "/api/v1/task/cancel"): Op(
        "Cancel several tasks", "tasks", A, CancelBatch, data="list:TaskObject"
    ),
    ("POST", "/api/v1/task/{task_id}/cancel"): Op("Cancel a task", "tasks", A, data=schemas.TaskObject),
    ("GET", "/api/v1/tasks"): Op("List your tasks, newest first, paged", "tasks", A, data=schemas.TaskPage),
    ("GET", "/api/v1/account"): Op("Plan, wallets, running tasks and daily limits", "account", A),
    ("GET", "/api/v1/account/notifications"): Op("Account notifications", "account", A),
    ("DELETE", "/api/v1/task/{task_id}"): Op(
        "Cancel a task (GoAPI's DELETE spelling)", "tasks", A, data=schemas.TaskObject
    ),
    ("GET", "/account/info"): Op("GoAPI account info: plan, credits, quotas", "account", A),
    ("GET", "/account/active_tasks"): Op("GoAPI active tasks: counts per model", "account", A),
    ("GET", "/api/open/tasks/histories"): Op("GoAPI task history, newest first, paged", "account", A),
    ("POST", "/admin/v1/users"): Op(
        "Create a user; returns its API key once", "admin", T, admin_routes.NewUser
    ),
    ("GET", "/admin/v1/users"): Op("List users", "admin", T),
    ("GET", "/admin/v1/users/{user_id}"): Op("Show a user with plan and wallets", "admin", T),
    ("PATCH", "/admin/v1/users/{user_id}"): Op("Change a user", "admin", T, admin_routes.UserChanges),
    ("POST", "/admin/v1/users/{user_id}/keys"): Op("Rotate a user's API key", "admin", T),
    ("DELETE", "/admin/v1/keys/{digest}"): Op("Revoke an API key", "admin", T),
    ("POST", "/admin/v1/users/{user_id}/wallets"): Op(
        "Top up or adjust a wallet", "admin", T, admin_routes.WalletChange
    ),
    ("POST", "/admin/v1/accounts"): Op("Add an upstream account", "admin", T, AccountSpec),
    ("GET", "/admin/v1/accounts"): Op("List accounts", "admin", T),
    ("GET", "/admin/v1/accounts/{account_id}"): Op("Show an account", "admin", T),
    ("PATCH", "/admin/v1/accounts/{account_id}"): Op(
        "Change an account", "admin", T, admin_routes.AccountChanges
    ),
    ("POST", "/admin/v1/accounts/{account_id}/pause"): Op("Pause an account", "admin", T),
    ("POST", "/admin/v1/accounts/{account_id}/resume"): Op("Resume an account", "admin", T),
    ("DELETE", "/admin/v1/accounts/{account_id}"): Op("Remove an account", "admin", T),
    ("GET", "/admin/v1/pool"): Op("Pool status", "admin", T),
    ("GET", "/admin/v1/tasks"): Op(
        "List any task with filters, newest first", "admin tasks", T, query=TaskQuery, data="list:TaskSummary"
    ),
    ("GET", "/admin/v1/tasks/{task_id}"): Op(
        "Show a task: attempts, ledger, webhooks", "admin tasks", T, data=schemas.TaskDetail
    ),
    ("GET", "/admin/v1/tasks/{task_id}/webhooks"): Op("Webhook attempts of a task", "admin tasks", T),
    ("POST", "/admin/v1/tasks/{task_id}/cancel"): Op(
        "Cancel any task", "admin tasks", T, data=schemas.TaskDetail
    ),
    ("POST", "/admin/v1/tasks/{task_id}/retry"): Op(
        "Run a failed task again as a new task", "admin tasks", T, data=schemas.RetryResult
    ),
    ("POST", "/admin/v1/tasks/{task_id}/requeue"): Op("Put a stuck task back in line", "admin tasks", T),
    ("POST", "/admin/v1/tasks/{task_id}/redeliver"): Op(
        "Queue one more webhook delivery", "admin tasks", T, data=schemas.Redelivery
    ),
    ("GET", "/admin/v1/overview"): Op(
        "Operator overview (the dashboard's figures)", "admin", T, data=schemas.Overview
    ),
    ("GET", "/healthz"): Op("Liveness", "operations", data=schemas.Probe),
    ("POST", "/callbacks/v1/upstream/{task_id}/{attempt}/{token}"): Op(
        "An upstream says a job ended (the per-attempt token is the credential)", "operations"
    ),
    ("POST", "/callbacks/v1/goapi/{task_id}/{attempt}"): Op(
        "GoAPI's webhook for one attempt (its per-attempt secret in x-webhook-secret)", "operations"
    ),
    ("GET", "/readyz"): Op("Readiness: Redis answers", "operations", data=schemas.Probe),
    ("GET", "/metrics"): Op("Prometheus metrics", "operations", content="text/plain"),
    ("GET", "/openapi.json"): Op("This document", "operations"),
    ("GET", "/docs"): Op("Rendered API documentation", "operations", content="text/html"),
    ("GET", "/docs/static/{name}"): Op("Files of the docs page", "operations", content="text/javascript"),
    ("GET", "/dashboard"): Op(
        "Dashboard (redirects to the login form without a session)", "dashboard", content="text/html"
    ),
    ("GET", "/dashboard/task/{task_id}"): Op("Dashboard page of one task", "dashboard", content="text/html"),
    ("GET", "/dashboard/login"): Op("Login form", "dashboard", content="text/html"),
    ("POST", "/dashboard/login"): Op(
        "Exchange the admin token (form field token) for a session cookie", "dashboard", content="text/html"
    ),
    ("POST", "/dashboard/logout"): Op("End the session", "dashboard", content="text/html"),
    ("GET", "/dashboard/static/{name}"): Op("Dashboard script and style", "dashboard", content="text/plain"),
    ("GET", "/dashboard/api/overview"): Op(
        "Overview for the dashboard", "dashboard", "session", data=schemas.Overview
    ),
    ("GET", "/dashboard/api/tasks"): Op(
        "Task list for the dashboard", "dashboard", "session", query=TaskQuery, data="list:TaskSummary"
    ),
    ("GET", "/dashboard/api/tasks/{task_id}"): Op(
        "Task detail for the dashboard", "dashboard", "session", data=schemas.TaskDetail
    ),
}

SECURITY = {
    "api_key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "admin_token": {"type": "apiKey", "in": "header", "name": "x-admin-token"},
    "session": {"type": "apiKey", "in": "cookie", "name": "tg_session"},
}
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    schemas.Envelope,
    schemas.TaskObject,
    schemas.TaskPage,
    schemas.TaskSummary,
    schemas.TaskDetail,
    schemas.RetryResult,
    schemas.Redelivery,
    schemas.Overview,
    schemas.Probe,
)
ERRORS = {
    "400": "Invalid input (names the field)",
    "401": "Missing or wrong credentials",
    "404": "Not found",
    "409": "Conflict with the task's state",
}


def _data_schema(data: type[BaseModel] | str | None) -> dict[str, Any]:
    if data is None:
        return {}
    if isinstance(data, str):
        return {"type": "array", "items": {"$ref": REF.format(model=data.split(":", 1)[1])}}
    return {"$ref": REF.format(model=data.__name__)}


def _operation(method: str, path: str, op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": f"{method.lower()}_{path.strip('/').replace('/', '_')}",
    }
    params = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in (p[1:-1] for p in path.split("/") if p.startswith("{"))
    ]
    if op.query is not None:
        props = op.query.model_json_schema(ref_template=REF)["properties"]
        params += [{"name": n, "in": "query", "required": False, "schema": s} for n, s in props.items()]
    if params:
        out["parameters"] = params
    if op.auth:
        out["security"] = [{op.auth: []}]
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}},
        }
    if op.content == "application/json":
        schema: dict[str, Any] = {"allOf": [{"$ref": REF.format(model="Envelope")}]}
        if op.data is not None:
            schema["allOf"].append({"type": "object", "properties": {"data": _data_schema(op.data)}})
        ok = {"description": "success", "content": {"application/json": {"schema": schema}}}
    else:
        ok = {"description": "success", "content": {op.content: {"schema": {"type": "string"}}}}
    out["responses"] = {
        "200": ok,
        **{
            code: {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Envelope")}}},
            }
            for code, text in ERRORS.items()
        },
    }
    return out


def build_document() -> dict[str, Any]:
    inputs = {m for op in OPERATIONS.values() for m in (op.body, op.query) if m is not None}
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)
    ]
    models += [(m, "serialization") for m in RESPONSE_MODELS]
    _, defs = models_json_schema(models, ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in OPERATIONS.items():
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "taskgate",
            "version": __version__,
            "description": "GoAPI-compatible task API, account API, admin API and operator endpoints.",
        },
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {}), "securitySchemes": SECURITY},
    }


routes = web.RouteTableDef()


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build_document())


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    return web.Response(
        text=(STATIC / "docs.html").read_text(),
        content_type="text/html",
        headers={"Content-Security-Policy": "default-src 'self'"},
    )


@routes.get("/docs/static/{name}")
async def docs_static(request: web.Request) -> web.Response:
    if request.match_info["name"] != "docs.js":
        raise web.HTTPNotFound()
    return web.Response(text=(STATIC / "docs.js").read_text(), content_type="text/javascript")
