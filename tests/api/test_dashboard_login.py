"""The dashboard's login form is as hostile-input proof as the JSON routes: a body that is not
valid UTF-8, or a token with a lone surrogate, is a 4xx login page, never a 5xx, and no session."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"token=\xff\xfe", "application/x-www-form-urlencoded", 400),
        (b"token=%ED%A0%80", "application/x-www-form-urlencoded", 401),  # a lone surrogate, percent-encoded
        (b"token=%ff%fe", "application/x-www-form-urlencoded", 401),
        (b'{"token": "test-admin-token"}', "application/json", 401),
        (b"", "application/x-www-form-urlencoded", 401),
    ],
)
async def test_a_hostile_login_form_is_refused_without_a_session(client, body, content_type, status):
    resp = await client.post(
        "/dashboard/login", data=body, headers={"content-type": content_type}, allow_redirects=False
    )
    assert resp.status == status, await resp.text()
    assert "tg_session" not in resp.cookies
    assert "log in" in await resp.text()


async def test_the_right_token_still_logs_in(client):
    resp = await client.post("/dashboard/login", data={"token": "test-admin-token"}, allow_redirects=False)
    assert resp.status == 303 and "tg_session" in resp.cookies
