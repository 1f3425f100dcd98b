"""The operator's live dashboard at ``/dashboard`` (DESIGN.md §2), behind the admin token.

A login form exchanges the token for a session cookie (HttpOnly, SameSite=Strict, path /dashboard);
the cookie holds an expiry and an HMAC keyed by the token, never the token itself, so changing the
token ends every session. The page and its data endpoints ship in the package (no CDN)."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from urllib.parse import parse_qs

from aiohttp import web

from taskgate.api.auth import APP_SETTINGS
from taskgate.api.overview import overview_for
from taskgate.api.requests import read_body
from taskgate.api.task_admin_routes import list_tasks_for, task_admin
from taskgate.errors import InvalidInput
from taskgate.web.envelope import error, ok

routes = web.RouteTableDef()
STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css", "docs.js": "text/javascript"}
COOKIE = "tg_session"
SESSION_S = 12 * 3600
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _token(request: web.Request) -> str:
    return request.app[APP_SETTINGS].admin_token.get_secret_value()


def _sign(token: str, expires: int) -> str:
    return hmac.new(token.encode(), f"dashboard:{expires}".encode(), hashlib.sha256).hexdigest()


def session_value(token: str, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + SESSION_S)
    return f"{expires}.{_sign(token, expires)}"


def has_session(request: web.Request) -> bool:
    token, raw = _token(request), request.cookies.get(COOKIE, "")
    expires, _, mac = raw.partition(".")
    if not token or not expires.isdigit() or int(expires) < time.time():
        return False
    return hmac.compare_digest(mac, _sign(token, int(expires)))


def _page(name: str, status: int = 200, replace: dict[str, str] | None = None) -> web.Response:
    text = (STATIC / name).read_text()
    for key, value in (replace or {}).items():
        text = text.replace(key, value)
    return web.Response(text=text, status=status, content_type="text/html", headers=HEADERS)


def _login_page(message: str = "", status: int = 200) -> web.Response:
    return _page("login.html", status, {"{{message}}": message})


@routes.get("/dashboard")
@routes.get("/dashboard/task/{task_id}")
async def dashboard(request: web.Request) -> web.Response:
    if not has_session(request):
        raise web.HTTPSeeOther("/dashboard/login", headers=HEADERS)
    return _page("dashboard.html")


@routes.get("/dashboard/login")
async def login_form(request: web.Request) -> web.Response:
    if not _token(request):
        return _login_page("The admin API is disabled: set TASKGATE_ADMIN_TOKEN.", 401)
    return _login_page()


async def _form_token(request: web.Request) -> str | None:
    """``token`` of the login form (URL-encoded UTF-8, as the login page posts it), or None for any
    other body: parsed here rather than by ``request.post()``, whose charset and multipart parsing
    raise on hostile bodies."""
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    try:
        text = (await read_body(request)).decode("utf-8")
    except (UnicodeDecodeError, InvalidInput):
        return None
    return parse_qs(text).get("token", [""])[0]


@routes.post("/dashboard/login")
async def login(request: web.Request) -> web.Response:
    given, token = await _form_token(request), _token(request)
    if given is None:
        return _login_page("The form could not be read.", 400)
    # surrogatepass: a lone surrogate in the form is just a wrong token
    if not token or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode()):
        return _login_page("Wrong admin token.", 401)
    response = web.HTTPSeeOther("/dashboard", headers=HEADERS)
    response.set_cookie(
        COOKIE,
        session_value(token),
        path="/dashboard",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        max_age=SESSION_S,
    )
    raise response


@routes.post("/dashboard/logout")
async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/dashboard/login", headers=HEADERS)
    response.del_cookie(COOKIE, path="/dashboard")
    raise response


@routes.get("/dashboard/static/{name}")
async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.Response(text=(STATIC / name).read_text(), content_type=STATIC_FILES[name], headers=HEADERS)


def _require_session(request: web.Request) -> web.Response | None:
    return None if has_session(request) else error(401, "log in at /dashboard/login")


@routes.get("/dashboard/api/overview")
async def overview(request: web.Request) -> web.Response:
    return _require_session(request) or ok(await overview_for(request))


@routes.get("/dashboard/api/tasks")
async def tasks(request: web.Request) -> web.Response:
    return _require_session(request) or ok(await list_tasks_for(request))


@routes.get("/dashboard/api/tasks/{task_id}")
async def task(request: web.Request) -> web.Response:
    return _require_session(request) or ok(await task_admin(request).show(request.match_info["task_id"]))
