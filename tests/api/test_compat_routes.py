"""Every customer route answers with and without a trailing slash, with the same handler; admin and
probe routes are left as they are."""

from __future__ import annotations

from taskgate.api.app import create_app
from taskgate.settings import Settings


def test_every_customer_route_has_a_trailing_slash_twin(settings: Settings) -> None:
    app = create_app(settings)
    routes = {(r.method, r.resource.canonical): r.handler for r in app.router.routes() if r.resource}
    customer = {k: h for k, h in routes.items() if k[1].startswith(("/api/", "/account")) and k[1][-1] != "/"}
    assert ("DELETE", "/api/v1/task/{task_id}") in customer
    assert ("GET", "/account/active_tasks") in customer
    for (method, path), handler in customer.items():
        assert routes.get((method, path + "/")) is handler, f"{method} {path}/"
    assert not any(path.endswith("/") for _, path in routes if path.startswith(("/admin", "/healthz")))
